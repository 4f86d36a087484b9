// Checks ferromq against the official IronMQ Go client (github.com/iron-io/iron_go3/mq),
// unmodified and configured only by its own settings: IRON_TOKEN, IRON_PROJECT_ID, IRON_HOST,
// IRON_PORT and IRON_SCHEME (tests/go_client.rs starts a server and sets them, with HOME and
// the working directory free of iron.json files). By hand, against a running server:
//
//	IRON_TOKEN=dev-token IRON_PROJECT_ID=5e0f0a0b0c0d0e0f10111213 IRON_HOST=127.0.0.1 \
//	  IRON_PORT=8080 IRON_SCHEME=http go test ./...
package check

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iron-io/iron_go3/mq"
)

// One prefix per run, so queues left by an earlier run never collide with this one.
var run = fmt.Sprintf("goclient-%d", time.Now().UnixNano())

// A queue name unique to this test; the queue is deleted when the test ends.
func queueName(t *testing.T, suffix string) string {
	name := strings.ToLower(run + "-" + t.Name() + suffix)
	t.Cleanup(func() { _ = mq.New(name).Delete() })
	return name
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func bodies(msgs []mq.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Body
	}
	return out
}

func size(t *testing.T, q mq.Queue) int {
	t.Helper()
	info, err := q.Info()
	must(t, err, "info")
	return info.Size
}

// Polls until check holds or ten seconds pass.
func eventually(check func() bool) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if check() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return check()
}

func TestPostPeekReserveTouchReleaseDelete(t *testing.T) {
	q := mq.New(queueName(t, ""))
	ids, err := q.PushStrings("first", "second", "third")
	must(t, err, "post")
	if len(ids) != 3 || ids[0] == ids[1] {
		t.Fatalf("ids: %v", ids)
	}
	info, err := q.Info()
	must(t, err, "info")
	if info.Size != 3 || info.TotalMessages != 3 {
		t.Fatalf("info after three posts: %+v", info)
	}

	peeked, err := q.PeekN(2)
	must(t, err, "peek")
	if got := bodies(peeked); fmt.Sprint(got) != "[first second]" || peeked[0].ReservationId != "" {
		t.Fatalf("peek: %+v", peeked)
	}

	msg, err := q.Reserve()
	must(t, err, "reserve")
	if msg == nil || msg.Id != ids[0] || msg.Body != "first" || msg.ReservedCount != 1 {
		t.Fatalf("reserved: %+v", msg)
	}
	first := msg.ReservationId
	must(t, msg.Touch(), "touch")
	if msg.ReservationId == "" || msg.ReservationId == first {
		t.Fatalf("touch gives a new reservation id: %q then %q", first, msg.ReservationId)
	}
	// The old reservation no longer acts.
	if err := q.DeleteMessage(msg.Id, first); err == nil {
		t.Fatal("delete with the reservation a touch replaced succeeded")
	}
	must(t, msg.Release(0), "release")

	// Released to the front: reserved again. The reserves and the touch each counted.
	again, err := q.Get()
	must(t, err, "get")
	if again.Id != ids[0] || again.ReservedCount != 3 {
		t.Fatalf("after release: %+v", again)
	}
	must(t, again.Delete(), "delete")
	err = again.Delete()
	if err == nil || !strings.HasPrefix(err.Error(), "404 Not Found") {
		t.Fatalf("second delete: %v", err)
	}

	rest, err := q.ReserveN(5)
	must(t, err, "reserve n")
	if fmt.Sprint(bodies(rest)) != "[second third]" {
		t.Fatalf("the rest, in order: %+v", rest)
	}
	must(t, q.DeleteReservedMessages(rest), "delete reserved messages")
	if n := size(t, q); n != 0 {
		t.Fatalf("size after deleting everything: %d", n)
	}
	empty, err := q.ReserveN(1)
	must(t, err, "reserve from an empty queue")
	if len(empty) != 0 {
		t.Fatalf("empty queue handed out %+v", empty)
	}
}

func TestBatchDeletePopClearAndLongPoll(t *testing.T) {
	q := mq.New(queueName(t, ""))
	ids, err := q.PushStrings("a", "b", "c", "d")
	must(t, err, "post")
	must(t, q.DeleteMessages(ids[:2]), "delete by ids")
	popped, err := q.Pop()
	must(t, err, "pop")
	if popped.Body != "c" {
		t.Fatalf("pop: %+v", popped)
	}
	if n := size(t, q); n != 1 {
		t.Fatalf("size after batch delete and pop: %d", n)
	}
	must(t, q.Clear(), "clear")
	if n := size(t, q); n != 0 {
		t.Fatalf("size after clear: %d", n)
	}

	// A long poll waits for a message posted while it waits.
	go func() {
		time.Sleep(500 * time.Millisecond)
		_, _ = q.PushString("late")
	}()
	start := time.Now()
	got, err := q.LongPoll(1, 30, 10, false)
	must(t, err, "long poll")
	if len(got) != 1 || got[0].Body != "late" || time.Since(start) > 8*time.Second {
		t.Fatalf("long poll: %+v after %v", got, time.Since(start))
	}
}

func TestQueueCreateUpdateListDelete(t *testing.T) {
	name := queueName(t, "")
	created, err := mq.CreateQueue(name, mq.QueueInfo{MessageTimeout: 120, MessageExpiration: 3600})
	must(t, err, "create")
	if created.Name != name || created.MessageTimeout != 120 || created.MessageExpiration != 3600 {
		t.Fatalf("created: %+v", created)
	}
	q := mq.New(name)
	// The client sends every field, zeros included: a zero means "leave it".
	updated, err := q.Update(mq.QueueInfo{MessageTimeout: 90})
	must(t, err, "update")
	if updated.MessageTimeout != 90 || updated.MessageExpiration != 3600 {
		t.Fatalf("updated: %+v", updated)
	}
	listed, err := mq.Filter(run)
	must(t, err, "list")
	found := false
	for _, l := range listed {
		found = found || l.Name == name
	}
	if !found {
		t.Fatalf("%s not listed among %+v", name, listed)
	}
	page, err := mq.ListPage("", 101)
	must(t, err, "list with per_page above 100")
	if len(page) == 0 {
		t.Fatal("no queues listed")
	}
	must(t, q.Delete(), "delete")
	_, err = q.Info()
	if err == nil || !mq.ErrQueueNotFound(err) {
		t.Fatalf("info of a deleted queue: %v", err)
	}
}

// A local HTTP subscriber that records the bodies pushed to it and answers each with `status`.
type subscriber struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newSubscriber(t *testing.T, status int) *subscriber {
	s := &subscriber{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.bodies = append(s.bodies, string(body))
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *subscriber) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bodies...)
}

func TestPushQueueDeliversAndReportsStatus(t *testing.T) {
	ok, failing := newSubscriber(t, http.StatusOK), newSubscriber(t, http.StatusInternalServerError)
	name, errors := queueName(t, ""), queueName(t, "-errors")
	_, err := mq.CreateQueue(name, mq.QueueInfo{
		Type: "multicast",
		Push: &mq.PushInfo{
			Retries:      1,
			RetriesDelay: 3,
			ErrorQueue:   errors,
			Subscribers: []mq.QueueSubscriber{
				{Name: "ok", URL: ok.URL},
				{Name: "failing", URL: failing.URL},
			},
		},
	})
	must(t, err, "create push queue")
	q := mq.New(name)
	info, err := q.Info()
	must(t, err, "info")
	if info.Type != "multicast" || info.Push == nil || len(info.Push.Subscribers) != 2 {
		t.Fatalf("push queue info: %+v", info)
	}
	id, err := q.PushString("pushed")
	must(t, err, "post")
	if !eventually(func() bool { return len(ok.received()) == 1 }) || ok.received()[0] != "pushed" {
		t.Fatalf("the subscriber received %v", ok.received())
	}
	// The client polls until no subscriber is still queued; then the one that failed has used
	// up its retry.
	var subs []mq.Subscriber
	if !eventually(func() bool {
		subs, err = q.MessageSubscribers(id)
		if err != nil || len(subs) != 2 {
			return false
		}
		for _, s := range subs {
			if s.Status == "queued" || s.Status == "retrying" {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("push status: %+v, %v", subs, err)
	}
	byURL := map[string]mq.Subscriber{}
	for _, s := range subs {
		byURL[s.URL] = s
	}
	if s := byURL[ok.URL]; s.StatusCode != 200 || s.Status != "deleted" || s.Retried != 1 {
		t.Fatalf("the subscriber that took it: %+v", s)
	}
	if s := byURL[failing.URL]; s.StatusCode != 500 || s.Status != "error" || s.Retried != 2 {
		t.Fatalf("the subscriber that failed: %+v", s)
	}
	// Its failure went to the error queue (made by that first message), naming the message.
	errorQueue := mq.New(errors)
	if !eventually(func() bool {
		info, err := errorQueue.Info()
		return err == nil && info.Size == 1
	}) {
		t.Fatal("nothing in the error queue")
	}
	failed, err := errorQueue.PeekN(1)
	must(t, err, "peek the error queue")
	if !strings.Contains(failed[0].Body, id) {
		t.Fatalf("error queue message: %s", failed[0].Body)
	}
}

func TestAlertPostsToItsQueue(t *testing.T) {
	name, target := queueName(t, ""), queueName(t, "-alerts")
	q := mq.New(name)
	_, err := q.PushString("creates the queue")
	must(t, err, "post")
	must(t, q.AddAlerts(&mq.Alert{Type: "fixed", Direction: "asc", Trigger: 2, Queue: target}), "add alert")
	info, err := q.Info()
	must(t, err, "info")
	if len(info.Alerts) != 1 || info.Alerts[0].Trigger != 2 || info.Alerts[0].Queue != target {
		t.Fatalf("alerts: %+v", info.Alerts)
	}
	_, err = q.PushString("crosses the trigger")
	must(t, err, "post")
	alerts := mq.New(target)
	if !eventually(func() bool {
		got, err := alerts.PeekN(1)
		return err == nil && len(got) == 1
	}) {
		t.Fatal("no alert message")
	}
	got, err := alerts.PeekN(1)
	must(t, err, "peek the alert")
	if !strings.Contains(got[0].Body, `"queue_size":2`) {
		t.Fatalf("alert message: %s", got[0].Body)
	}
}

func TestErrorsAreTheClientsErrors(t *testing.T) {
	missing := mq.New(queueName(t, "-missing"))
	if _, err := missing.Info(); err == nil || !mq.ErrQueueNotFound(err) {
		t.Fatalf("info of a missing queue: %v", err)
	}
	q := mq.New(queueName(t, ""))
	id, err := q.PushString("held")
	must(t, err, "post")
	msg, err := q.Reserve()
	must(t, err, "reserve")
	if err := q.DeleteMessage(id, ""); err == nil || !strings.HasPrefix(err.Error(), "403 Forbidden") {
		t.Fatalf("delete of a reserved message without its reservation: %v", err)
	}
	must(t, msg.Delete(), "delete with the reservation")
}
