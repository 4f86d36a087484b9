#!/usr/bin/env python3
"""Checks ferromq against the official IronMQ Python client (PyPI `iron-mq` 0.9 on `iron-core` 1.2).

Every test drives a running ferromq server through the unmodified client library, so what passes here
is what a Python user of IronMQ v3 gets: queue create/info/update/list/delete, post, reserve (FIFO),
peek, get by id, touch, release, delete (single and batch) and clear, with the status codes and
`msg` strings of the IronMQ v3 API.

Run: `make test` starts a server and runs this script against it. By hand:

    FERROMQ_PORT=8080 FERROMQ_TOKEN=secret python3 tests/python/ironmq_client_check.py

Environment:
    FERROMQ_HOST     server host (default 127.0.0.1)
    FERROMQ_PORT     server port (required)
    FERROMQ_TOKEN    a token allowed to use the project (required)
    FERROMQ_PROJECT  project id (default 5e0f0a0b0c0d0e0f10111213, 24 hex like IronMQ's)

Needs `pip install iron-mq iron-core`. Prints unittest's summary; exits non-zero on any failure.
"""

import json
import os
import sys
import time
import unittest
import urllib
import urllib.parse
import uuid

# iron_mq 0.9 is Python 2 code in one place: IronMQ.queues() calls urllib.urlencode, which lives in
# urllib.parse on Python 3. Alias it before the client is used.
urllib.urlencode = urllib.parse.urlencode

# iron_core reads ~/.iron.json, ./iron.json and IRON_* / IRON_MQ_* variables before the constructor
# arguments. Arguments win for everything we pass, but a stray `cloud` would replace host, port and
# protocol, and a `keystone` string would crash the constructor; drop both so the run is hermetic.
for _key in ("IRON_CLOUD", "IRON_MQ_CLOUD", "IRON_KEYSTONE", "IRON_MQ_KEYSTONE"):
    os.environ.pop(_key, None)

import requests  # noqa: E402  (installed with iron-core, which raises its HTTPError)
from iron_mq import IronMQ  # noqa: E402

HOST = os.environ.get("FERROMQ_HOST", "127.0.0.1")
PORT = os.environ.get("FERROMQ_PORT")
TOKEN = os.environ.get("FERROMQ_TOKEN")
PROJECT = os.environ.get("FERROMQ_PROJECT", "5e0f0a0b0c0d0e0f10111213")

# One prefix per run, so queues left over from an earlier run never collide with this one.
RUN = "pyclient-%s" % uuid.uuid4().hex[:8]


def make_client(token=None):
    """The client exactly as a user points it at ferromq: only host, port, protocol, token, project."""
    return IronMQ(
        host=HOST,
        port=int(PORT),
        protocol="http",
        token=token or TOKEN,
        project_id=PROJECT,
        api_version=3,
    )


class IronMQPythonClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mq = make_client()
        expected = "http://%s:%s/3/projects/%s/" % (HOST, int(PORT), PROJECT)
        if cls.mq.client.base_url != expected:
            raise RuntimeError(
                "client configuration leaked in from iron.json or IRON_* variables: base URL is %s, "
                "expected %s" % (cls.mq.client.base_url, expected)
            )
        try:
            requests.get(expected, timeout=5)
        except requests.ConnectionError as e:
            raise RuntimeError("no ferromq server answers at %s: %s" % (expected, e))

    # -- helpers ------------------------------------------------------------------------------------

    def new_queue_name(self, suffix=""):
        """A queue name unique to this test (and run); the queue is deleted when the test ends."""
        name = "%s-%s%s" % (RUN, self._testMethodName.replace("test_", ""), suffix)
        self.addCleanup(self.delete_queue_quietly, name)
        return name

    def delete_queue_quietly(self, name):
        try:
            self.mq.queue(name).delete_queue()
        except requests.HTTPError:
            pass

    def assertHTTPError(self, status, call, *args, **kwargs):
        """Asserts that a client call fails with `status` and a JSON `{"msg": ...}` body; returns msg.

        iron_core calls `requests.Response.raise_for_status()`, so a non-2xx answer surfaces as
        `requests.HTTPError` with the response (status, headers, body) on its `.response`.
        """
        with self.assertRaises(requests.HTTPError) as caught:
            call(*args, **kwargs)
        response = caught.exception.response
        self.assertIsNotNone(response, "HTTPError without a response")
        self.assertEqual(status, response.status_code, "body: %r" % response.text)
        self.assertEqual("application/json", response.headers.get("Content-Type"))
        body = response.json()
        self.assertIsInstance(body.get("msg"), str, "error body without msg: %r" % body)
        return body["msg"]

    def post_bodies(self, queue, *bodies):
        """Posts messages and checks the answer; returns their ids in posting order."""
        answer = queue.post(*bodies)
        self.assertEqual("Messages put on queue.", answer["msg"])
        ids = answer["ids"]
        self.assertEqual(len(bodies), len(ids))
        for message_id in ids:
            self.assertIsInstance(message_id, str)
            self.assertTrue(message_id.isdigit(), "message id %r is not a string of digits" % message_id)
        self.assertEqual(len(ids), len(set(ids)), "message ids are not unique")
        return ids

    def reserve(self, queue, n=None, timeout=None):
        """Reserves and returns the list of messages (checking the answer is a list, never null)."""
        answer = queue.reserve(n, timeout)
        self.assertIsInstance(answer.get("messages"), list, "reserve answer: %r" % answer)
        return answer["messages"]

    # -- queues -------------------------------------------------------------------------------------

    def test_created_queue_reports_defaults_in_info(self):
        name = self.new_queue_name()
        created = self.mq.create_queue(name)
        self.assertEqual(name, created["name"])

        q = self.mq.queue(name)
        info = q.info()
        self.assertEqual(name, info["name"])
        self.assertEqual(PROJECT, info["project_id"])
        self.assertEqual(0, info["size"])
        self.assertEqual(0, info["total_messages"])
        self.assertEqual(60, info["message_timeout"])
        self.assertEqual(604800, info["message_expiration"])
        self.assertEqual("pull", info["type"])
        self.assertNotIn("push", info, "a pull queue must not carry a push section")
        # The client's shortcut accessors read single fields of the same info.
        self.assertEqual(0, q.size())
        self.assertEqual(0, q.total_messages())
        self.assertIsInstance(q.id(), str)
        self.assertEqual(q.id(), q.info()["id"], "queue id is not stable")

    def test_update_queue_changes_only_the_given_settings(self):
        name = self.new_queue_name()
        self.mq.create_queue(name)

        updated = self.mq.update_queue(name, {"message_timeout": 120})
        self.assertEqual(120, updated["message_timeout"])
        self.assertEqual(120, self.mq.queue(name).info()["message_timeout"])

        # Queue.update() is the same PATCH from the queue object; earlier settings must survive.
        updated = self.mq.queue(name).update({"message_expiration": 3600})
        self.assertEqual(3600, updated["message_expiration"])
        self.assertEqual(120, updated["message_timeout"])
        info = self.mq.queue(name).info()
        self.assertEqual(3600, info["message_expiration"])
        self.assertEqual(120, info["message_timeout"])

    def test_queue_listing_is_sorted_filtered_and_paged(self):
        base = self.new_queue_name()
        first, second = self.new_queue_name("-a"), self.new_queue_name("-b")
        self.mq.create_queue(second)
        self.mq.create_queue(first)

        # queues() returns a list of names; every call here goes through the urlencode alias.
        self.assertEqual([first, second], self.mq.queues(prefix=base))
        self.assertEqual([first, second], self.mq.queues(per_page=100, prefix=base))
        self.assertEqual([first], self.mq.queues(per_page=1, prefix=base))
        self.assertEqual([second], self.mq.queues(per_page=1, previous=first, prefix=base))
        self.assertEqual([], self.mq.queues(previous=second, prefix=base))
        everything = self.mq.queues(per_page=100)
        self.assertTrue(all(isinstance(n, str) for n in everything))
        self.assertEqual(sorted(everything), everything, "listing is not sorted by name")

    def test_deleted_queue_answers_404_queue_not_found(self):
        name = self.new_queue_name()
        q = self.mq.queue(name)
        self.mq.create_queue(name)
        self.post_bodies(q, "gone soon")

        answer = q.delete_queue()
        # The contract says "Deleted"; IronMQ v1 and the .NET client use "Deleted." for queues.
        self.assertIn(answer["msg"], ("Deleted", "Deleted."))

        self.assertEqual("Queue not found", self.assertHTTPError(404, q.info))
        self.assertEqual("Queue not found", self.assertHTTPError(404, q.reserve))
        self.assertNotIn(name, self.mq.queues(prefix=name))

    # -- messages -----------------------------------------------------------------------------------

    def test_reserve_returns_posted_messages_in_fifo_order(self):
        q = self.mq.queue(self.new_queue_name())
        bodies = ["first", "second", "third"]
        ids = self.post_bodies(q, *bodies)

        messages = self.reserve(q, 3)
        self.assertEqual(bodies, [m["body"] for m in messages])
        self.assertEqual(ids, [m["id"] for m in messages])
        for m in messages:
            self.assertEqual(1, m["reserved_count"])
            self.assertIsInstance(m["reservation_id"], str)
            self.assertTrue(m["reservation_id"], "empty reservation id")
        self.assertEqual(3, len({m["reservation_id"] for m in messages}), "reservation ids repeat")

        # Reserved messages stay in size until deleted, and nothing else is ready.
        info = q.info()
        self.assertEqual(3, info["size"])
        self.assertEqual(3, info["total_messages"])
        self.assertEqual([], self.reserve(q))

    def test_peek_shows_ready_messages_without_reserving_them(self):
        q = self.mq.queue(self.new_queue_name())
        ids = self.post_bodies(q, "one", "two", "three")

        peeked = q.peek(3)["messages"]
        self.assertEqual(ids, [m["id"] for m in peeked])
        self.assertEqual(["one", "two", "three"], [m["body"] for m in peeked])
        self.assertEqual([0, 0, 0], [m["reserved_count"] for m in peeked])
        self.assertEqual(ids[:1], [m["id"] for m in q.peek()["messages"]], "peek() defaults to n=1")

        # Peeking reserved nothing: the first reserve still gets the first message, for the first time.
        reserved = self.reserve(q)
        self.assertEqual([(ids[0], 1)], [(m["id"], m["reserved_count"]) for m in reserved])

        # A reserved message is invisible to peek.
        self.assertEqual(ids[1:], [m["id"] for m in q.peek(3)["messages"]])

    def test_get_message_by_id_does_not_reserve(self):
        q = self.mq.queue(self.new_queue_name())
        [message_id] = self.post_bodies(q, "look at me")

        message = q.get_message_by_id(message_id)
        self.assertEqual(message_id, message["id"])
        self.assertEqual("look at me", message["body"])
        self.assertEqual(0, message["reserved_count"])

        [reserved] = self.reserve(q)
        self.assertEqual(message_id, reserved["id"])
        self.assertEqual(1, reserved["reserved_count"])
        # Getting a reserved message by id works and shows its count.
        self.assertEqual(1, q.get_message_by_id(message_id)["reserved_count"])

    def test_touch_issues_a_new_reservation_and_the_old_one_is_refused_with_403(self):
        q = self.mq.queue(self.new_queue_name())
        [message_id] = self.post_bodies(q, "slow job")
        [reserved] = self.reserve(q)
        first = reserved["reservation_id"]

        touched = q.touch(message_id, first)
        self.assertEqual("Touched", touched["msg"])
        second = touched["reservation_id"]
        self.assertIsInstance(second, str)
        self.assertNotEqual(first, second)

        # Touch again with the new id and an explicit timeout, as the client's own tests do.
        touched = q.touch(message_id, second, timeout=30)
        self.assertEqual("Touched", touched["msg"])
        third = touched["reservation_id"]
        self.assertNotIn(third, (first, second))

        self.assertHTTPError(403, q.delete, message_id, first)
        self.assertHTTPError(403, q.touch, message_id, second)
        self.assertEqual(1, q.size(), "a refused delete removed the message")

        self.assertEqual("Deleted", q.delete(message_id, third)["msg"])
        self.assertEqual(0, q.size())

    def test_released_message_is_reserved_again_from_the_front(self):
        q = self.mq.queue(self.new_queue_name())
        ids = self.post_bodies(q, "retry me", "after me")
        [reserved] = self.reserve(q)
        self.assertEqual((ids[0], 1), (reserved["id"], reserved["reserved_count"]))

        self.assertEqual("Released", q.release(ids[0], reserved["reservation_id"])["msg"])

        [again] = self.reserve(q)
        self.assertEqual(ids[0], again["id"], "a released message goes back to the front")
        self.assertEqual(2, again["reserved_count"])
        self.assertNotEqual(reserved["reservation_id"], again["reservation_id"])

        # The reservation given up by release is no longer valid.
        self.assertHTTPError(403, q.delete, ids[0], reserved["reservation_id"])
        self.assertEqual("Deleted", q.delete(ids[0], again["reservation_id"])["msg"])

    def test_a_message_reserved_too_often_goes_to_the_dead_letter_queue(self):
        name, dead = self.new_queue_name(), self.new_queue_name("-dead")
        self.mq.create_queue(name)
        updated = self.mq.update_queue(name, {"dead_letter": {"queue_name": dead, "max_reservations": 1}})
        self.assertEqual({"queue_name": dead, "max_reservations": 1}, updated["dead_letter"])
        q = self.mq.queue(name)
        [message_id] = self.post_bodies(q, "poison")
        [reserved] = self.reserve(q)
        q.release(message_id, reserved["reservation_id"])

        # The second reserve would pass max_reservations: the message moves instead (the move
        # runs beside the reserve's answer).
        self.assertEqual([], self.reserve(q))
        deadline = time.time() + 5
        moved = []
        while not moved and time.time() < deadline:
            moved = self.reserve(self.mq.queue(dead))
            if not moved:
                time.sleep(0.05)
        [moved] = moved
        self.assertEqual((message_id, "poison", 2), (moved["id"], moved["body"], moved["reserved_count"]))

        # Bad settings are refused with 400 and a msg.
        msg = self.assertHTTPError(400, self.mq.update_queue, name, {"dead_letter": {"queue_name": dead, "max_reservations": 0}})
        self.assertIn("max_reservations", msg)

    def test_an_alert_posts_to_its_queue_when_the_size_crosses_its_trigger(self):
        name, target = self.new_queue_name(), self.new_queue_name("-alerts")
        self.mq.create_queue(name)
        alert = {"type": "fixed", "direction": "asc", "trigger": 2, "queue": target}
        updated = self.mq.update_queue(name, {"alerts": [alert]})
        [listed] = updated["alerts"]
        self.assertEqual(dict(alert, snooze=0, id=listed["id"]), listed)
        q = self.mq.queue(name)
        self.assertEqual([listed], q.info()["alerts"])

        self.post_bodies(q, "one")
        self.post_bodies(q, "two", "three")
        # The alert's message goes out beside the post's answer; its queue is made for it.
        deadline = time.time() + 5
        got = []
        while not got and time.time() < deadline:
            try:
                got = self.reserve(self.mq.queue(target))
            except requests.exceptions.HTTPError as e:
                if e.response.status_code != 404:
                    raise
            if not got:
                time.sleep(0.05)
        [message] = got
        body = json.loads(message["body"])
        self.assertEqual((name, 3, listed["id"], "fixed", "asc", 2),
                         (body["source_queue"], body["queue_size"], body["alert_id"],
                          body["alert_type"], body["alert_direction"], body["alert_trigger"]))

        # Removed by id; bad alerts are refused with 400 and a msg.
        removed = self.mq.client.delete("queues/%s/alerts/%s" % (name, listed["id"]))
        self.assertEqual("Deleted", removed["body"]["msg"])
        self.assertNotIn("alerts", q.info())
        msg = self.assertHTTPError(400, self.mq.update_queue, name, {"alerts": [dict(alert, type="sliding")]})
        self.assertIn("fixed or progressive", msg)

    def test_delete_with_reservation_id_removes_the_message(self):
        q = self.mq.queue(self.new_queue_name())
        ids = self.post_bodies(q, "done", "unreserved")
        [reserved] = self.reserve(q)
        self.assertEqual(2, q.size())

        # A reserved message cannot be deleted without its reservation id.
        self.assertHTTPError(403, q.delete, ids[0])
        self.assertEqual(2, q.size())

        self.assertEqual("Deleted", q.delete(ids[0], reserved["reservation_id"])["msg"])
        self.assertEqual(1, q.size())
        self.assertEqual("Message not found", self.assertHTTPError(404, q.get_message_by_id, ids[0]))

        # A message nobody holds is deleted by id alone.
        self.assertEqual("Deleted", q.delete(ids[1])["msg"])
        self.assertEqual(0, q.size())
        self.assertEqual(2, q.total_messages(), "total_messages counts every message ever posted")

    def test_batch_delete_removes_several_messages(self):
        q = self.mq.queue(self.new_queue_name())
        ids = self.post_bodies(q, "a", "b", "c", "d", "e")

        # delete_multiple(messages=...) takes a reserve answer and sends each id with its reservation.
        answer = q.reserve(3)
        self.assertEqual(ids[:3], [m["id"] for m in answer["messages"]])
        self.assertEqual("Deleted", q.delete_multiple(messages=answer)["msg"])
        self.assertEqual(2, q.size())

        # delete_multiple(ids=...) sends bare ids, fine for messages nobody holds.
        self.assertEqual("Deleted", q.delete_multiple(ids=ids[3:])["msg"])
        self.assertEqual(0, q.size())
        self.assertEqual([], self.reserve(q))

    def test_clear_empties_the_queue_including_reserved_messages(self):
        q = self.mq.queue(self.new_queue_name())
        self.post_bodies(q, "x", "y", "z")
        self.reserve(q)
        self.assertEqual(3, q.size())

        self.assertEqual("Cleared", q.clear()["msg"])
        self.assertEqual(0, q.size())
        self.assertEqual([], self.reserve(q))
        self.assertEqual([], q.peek(3)["messages"])

    # -- transport ----------------------------------------------------------------------------------

    def test_answers_are_plain_application_json(self):
        # iron_core decodes a body only when Content-Type (before any ";") is application/json and
        # raises KeyError when the header is missing; the contract asks for exactly that value.
        name = self.new_queue_name()
        self.mq.create_queue(name)
        result = self.mq.client.get("queues/%s" % name)
        self.assertEqual(200, result["status"])
        self.assertEqual("application/json", result["resp"].headers["Content-Type"])
        self.assertIsInstance(result["body"], dict)

    def test_unknown_token_is_refused_with_401(self):
        name = self.new_queue_name()
        self.mq.create_queue(name)
        stranger = make_client(token="not-a-token-%s" % uuid.uuid4().hex)
        self.assertHTTPError(401, stranger.queue(name).info)


if __name__ == "__main__":
    missing = [var for var in ("FERROMQ_PORT", "FERROMQ_TOKEN") if not os.environ.get(var)]
    if missing:
        sys.exit("%s: set %s (see the docstring)" % (os.path.basename(sys.argv[0]), ", ".join(missing)))
    unittest.main(verbosity=2)
