module ferromq.dev/tests/ironmq-go-client

go 1.21

require github.com/iron-io/iron_go3 v0.0.0-20190916120531-a4a7f74b73ac
