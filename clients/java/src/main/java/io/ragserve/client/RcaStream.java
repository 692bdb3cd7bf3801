package io.ragserve.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ragserve.client.rca.RcaAnalysis;
import io.ragserve.client.rca.RcaStreamEvent;
import java.io.IOException;
import java.io.InputStream;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.function.Consumer;

/**
 * A streamed analysis ({@code POST /v1/rca} with {@code stream: true}): progress events until
 * {@code data: [DONE]}. An {@code error} event (or an OpenAI error envelope inside the stream) raises
 * {@link StreamErrorException}.
 */
public final class RcaStream implements Iterable<RcaStreamEvent>, AutoCloseable {
    private final SseReader sse;
    private final ObjectMapper mapper;
    private RcaStreamEvent next;
    private boolean done;
    private boolean iterated;

    RcaStream(InputStream body, ObjectMapper mapper) {
        this.sse = new SseReader(body);
        this.mapper = mapper;
    }

    @Override
    public Iterator<RcaStreamEvent> iterator() {
        if (iterated) {
            throw new IllegalStateException("an RcaStream can be iterated once");
        }
        iterated = true;
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                if (next == null && !done) {
                    next = read();
                }
                return next != null;
            }

            @Override
            public RcaStreamEvent next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                RcaStreamEvent e = next;
                next = null;
                return e;
            }
        };
    }

    /** Reads to the end, handing every event to {@code onEvent}, and returns the final analysis. */
    public RcaAnalysis result(Consumer<RcaStreamEvent> onEvent) {
        RcaAnalysis result = null;
        try (this) {
            for (RcaStreamEvent e : this) {
                if (onEvent != null) {
                    onEvent.accept(e);
                }
                if ("result".equals(e.type())) {
                    result = e.result();
                }
            }
        }
        if (result == null) {
            throw new RagserveException("the analysis stream ended without a result");
        }
        return result;
    }

    private RcaStreamEvent read() {
        String data = sse.next();
        if (data == null || data.equals("[DONE]")) {
            done = true;
            return null;
        }
        JsonNode node;
        RcaStreamEvent event;
        try {
            node = mapper.readTree(data);
            event = node.has("type") ? mapper.treeToValue(node, RcaStreamEvent.class) : null;
        } catch (IOException e) {
            done = true;
            throw new RagserveException("unexpected analysis event: " + SseReader.abbreviate(data), e);
        }
        JsonNode err = node.get("error");
        if (err != null && err.isObject() && (event == null || "error".equals(event.type()))) {
            done = true;
            throw new StreamErrorException(
                    err.path("message").asText("analysis failed"), err.path("type").asText("server_error"),
                    err.hasNonNull("code") ? err.get("code").asText() : null,
                    err.hasNonNull("param") ? err.get("param").asText() : null, data);
        }
        if (event == null) {
            done = true;
            throw new RagserveException("an analysis event without a type: " + SseReader.abbreviate(data));
        }
        return event;
    }

    @Override
    public void close() {
        done = true;
        sse.close();
    }
}
