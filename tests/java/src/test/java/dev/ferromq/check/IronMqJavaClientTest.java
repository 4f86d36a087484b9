package dev.ferromq.check;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import com.sun.net.httpserver.HttpServer;
import io.iron.ironmq.Alert;
import io.iron.ironmq.Client;
import io.iron.ironmq.EmptyQueueException;
import io.iron.ironmq.HTTPException;
import io.iron.ironmq.Ids;
import io.iron.ironmq.Message;
import io.iron.ironmq.MessageOptions;
import io.iron.ironmq.MessagePushModel;
import io.iron.ironmq.Messages;
import io.iron.ironmq.Queue;
import io.iron.ironmq.QueueModel;
import io.iron.ironmq.Queues;
import io.iron.ironmq.Subscriber;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.function.BooleanSupplier;
import org.junit.After;
import org.junit.BeforeClass;
import org.junit.Test;

/**
 * Checks ferromq against the official IronMQ Java client ({@code io.iron.ironmq:ironmq} 3.0.5),
 * unmodified and configured only by its own settings: the iron.json file that IRON_CONFIG names
 * (project_id, token, scheme, host, port), which tests/java_client.rs writes for a server it
 * starts. By hand: {@code IRON_CONFIG=/path/to/iron.json mvn -q test}.
 */
public class IronMqJavaClientTest {
    /** One prefix per run, so queues left by an earlier run never collide with this one. */
    private static final String RUN = "javaclient-" + System.nanoTime();

    private static Client client;
    private final List<String> made = new ArrayList<>();

    @BeforeClass
    public static void connect() {
        assertNotNull("IRON_CONFIG must name the client's iron.json", System.getenv("IRON_CONFIG"));
        client = new Client();
    }

    @After
    public void deleteQueues() {
        for (String name : made) {
            try {
                client.queue(name).destroy();
            } catch (IOException gone) {
                // Deleted by the test itself, or never made.
            }
        }
    }

    /** A queue unique to this test; deleted when it ends. */
    private Queue queue(String name) {
        String full = RUN + "-" + name;
        made.add(full);
        return client.queue(full);
    }

    private static List<String> bodies(Messages messages) {
        List<String> out = new ArrayList<>();
        for (Message m : messages.getMessages()) {
            out.add(m.getBody());
        }
        return out;
    }

    private static boolean eventually(BooleanSupplier check) throws InterruptedException {
        long deadline = System.currentTimeMillis() + 5000;
        while (System.currentTimeMillis() < deadline) {
            if (check.getAsBoolean()) {
                return true;
            }
            Thread.sleep(50);
        }
        return check.getAsBoolean();
    }

    private static long size(Queue q) {
        try {
            return q.getInfoAboutQueue().getSize();
        } catch (IOException e) {
            return -1;
        }
    }

    private static int statusOf(IOCall call) throws IOException {
        try {
            call.run();
        } catch (HTTPException e) {
            return e.getStatusCode();
        }
        fail("no error");
        return 0;
    }

    interface IOCall {
        void run() throws IOException;
    }

    @Test
    public void postPeekReserveTouchReleaseGetDelete() throws IOException {
        Queue q = queue("basics");
        Ids ids = q.pushMessages(new String[] {"first", "second", "third"});
        assertEquals(3, ids.getSize());
        QueueModel info = q.getInfoAboutQueue();
        assertEquals(3, info.getSize());
        assertEquals(3, info.getTotalMessages());

        Messages peeked = q.peek(2);
        assertEquals(Arrays.asList("first", "second"), bodies(peeked));

        Message message = q.reserve();
        assertEquals(ids.getId(0), message.getId());
        assertEquals("first", message.getBody());
        assertEquals(1, message.getReservedCount());
        String first = message.getReservationId();
        MessageOptions touched = q.touchMessage(message);
        assertNotNull(touched.getReservationId());
        assertNotEquals(first, touched.getReservationId());
        // The reservation a touch replaced no longer acts.
        assertEquals(403, statusOf(() -> q.deleteMessage(message.getId(), first)));
        q.releaseMessage(message.getId(), touched.getReservationId(), 0L);

        Message byId = q.getMessageById(ids.getId(0));
        assertEquals("first", byId.getBody());
        // Released to the front: reserved again. The reserves and the touch each counted.
        Message again = q.reserve();
        assertEquals(ids.getId(0), again.getId());
        assertEquals(3, again.getReservedCount());
        q.deleteMessage(again);
        assertEquals(404, statusOf(() -> q.deleteMessage(again)));

        Messages rest = q.reserve(5);
        assertEquals(Arrays.asList("second", "third"), bodies(rest));
        q.deleteMessages(rest);
        assertEquals(0, q.getInfoAboutQueue().getSize());
        try {
            q.reserve();
            fail("an empty queue handed out a message");
        } catch (EmptyQueueException expected) {
            // What the client throws when a reserve gets nothing.
        }
    }

    @Test
    public void batchDeleteByIdsAndClear() throws IOException {
        Queue q = queue("batch");
        q.pushMessages(new String[] {"a", "b", "c"});
        // Unreserved messages, deleted by id in one call (the client sends no reservation ids).
        q.deleteMessages(q.peek(2));
        assertEquals(Collections.singletonList("c"), bodies(q.peek(10)));
        q.clear();
        assertEquals(0, q.getInfoAboutQueue().getSize());
    }

    @Test
    public void queueCreateUpdateListDelete() throws IOException {
        Queue q = queue("settings");
        QueueModel created = q.create(new QueueModel(120, 3600));
        assertEquals(q.getName(), created.getName());
        assertEquals(120, created.getMessageTimeout());
        assertEquals(3600, created.getMessageExpiration());
        QueueModel updated = q.update(new QueueModel(90, 3600));
        assertEquals(90, updated.getMessageTimeout());

        boolean listed = false;
        for (QueueModel m : Queues.getQueues(client, null, 100, RUN)) {
            listed |= m.getName().equals(q.getName());
        }
        assertTrue(q.getName() + " listed", listed);

        q.destroy();
        assertEquals(404, statusOf(q::getInfoAboutQueue));
    }

    @Test
    public void pushQueueDeliversToALocalSubscriberAndReportsStatus() throws Exception {
        List<String> received = Collections.synchronizedList(new ArrayList<>());
        HttpServer subscriber = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        subscriber.createContext("/", exchange -> {
            received.add(new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8));
            exchange.sendResponseHeaders(200, -1);
            exchange.close();
        });
        subscriber.start();
        try {
            String url = "http://127.0.0.1:" + subscriber.getAddress().getPort() + "/hook";
            Queue q = queue("push");
            ArrayList<Subscriber> subscribers = new ArrayList<>();
            subscribers.add(new Subscriber(url, "local"));
            QueueModel created = q.create(subscribers, null, "unicast", 3, 3);
            assertEquals("unicast", created.getType());
            assertEquals(1, created.getSubscribers().size());

            String id = q.push("pushed");
            assertTrue("delivered", eventually(() -> received.size() == 1));
            assertEquals("pushed", received.get(0));
            assertTrue("push status", eventually(() -> {
                try {
                    List<MessagePushModel> status = q.getPushStatusForMessage(id).getSubscribers();
                    return status.size() == 1 && status.get(0).getStatus_code() == 200;
                } catch (IOException e) {
                    return false;
                }
            }));
            MessagePushModel status = q.getPushStatusForMessage(id).getSubscribers().get(0);
            assertEquals("deleted", status.getStatus());
            assertEquals(url, status.getUrl());
        } finally {
            subscriber.stop(0);
        }
    }

    @Test
    public void alertsAreAddedReadBackAndPostToTheirQueue() throws Exception {
        Queue q = queue("watched");
        Queue target = queue("watched-alerts");
        q.push("creates the queue");
        ArrayList<Alert> alerts = new ArrayList<>();
        alerts.add(new Alert(Alert.typeFixed, Alert.directionAscending, 2, target.getName()));
        q.addAlertsToQueue(alerts);
        ArrayList<Alert> back = q.getInfoAboutQueue().getAlerts();
        assertEquals(1, back.size());
        assertEquals(2, back.get(0).getTrigger());
        assertEquals(target.getName(), back.get(0).getQueue());
        assertNotNull("a server-set id", back.get(0).getId());

        q.push("crosses the trigger");
        assertTrue("an alert message", eventually(() -> size(target) == 1));
        assertTrue(target.peek().getBody().contains("\"queue_size\":2"));

        q.deleteAlertFromQueueById(back.get(0).getId());
        assertTrue(q.getInfoAboutQueue().getAlerts() == null
                || q.getInfoAboutQueue().getAlerts().isEmpty());
    }

    @Test
    public void errorsAreTheClientsErrors() throws IOException {
        Queue missing = queue("missing");
        assertEquals(404, statusOf(missing::getInfoAboutQueue));
        Queue q = queue("held");
        String id = q.push("held");
        Message message = q.reserve();
        assertEquals(403, statusOf(() -> q.deleteMessage(id)));
        assertEquals(403, statusOf(() -> q.deleteMessage(id, "not-its-reservation")));
        q.deleteMessage(message);
        assertEquals(0, q.getInfoAboutQueue().getSize());
    }
}
