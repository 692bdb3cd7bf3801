package io.ragserve.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.ragserve.client.model.ChatCompletionChunk;
import io.ragserve.client.model.Citation;
import io.ragserve.client.model.StreamedAnswer;
import io.ragserve.client.model.Usage;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import java.util.function.Consumer;

/**
 * A streamed chat answer read from Server-Sent Events, one {@link ChatCompletionChunk} per
 * {@code data:} event until {@code data: [DONE]}. An error event inside the stream raises
 * {@link StreamErrorException}. Close it (try-with-resources) to stop early; closing before the end
 * drops the connection, which makes ragserve abort the generation.
 */
public final class ChatStream implements Iterable<ChatCompletionChunk>, AutoCloseable {
    private final SseReader sse;
    private final ObjectMapper mapper;
    private ChatCompletionChunk next;
    private boolean done;
    private boolean iterated;

    ChatStream(InputStream body, ObjectMapper mapper) {
        this.sse = new SseReader(body);
        this.mapper = mapper;
    }

    @Override
    public Iterator<ChatCompletionChunk> iterator() {
        if (iterated) {
            throw new IllegalStateException("a ChatStream can be iterated once");
        }
        iterated = true;
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                if (next == null && !done) {
                    next = readChunk();
                }
                return next != null;
            }

            @Override
            public ChatCompletionChunk next() {
                if (!hasNext()) {
                    throw new NoSuchElementException();
                }
                ChatCompletionChunk c = next;
                next = null;
                return c;
            }
        };
    }

    /**
     * Reads the whole stream, handing each piece of text to {@code onDelta} as it arrives, and
     * returns the assembled answer with its finish reason, usage and (grounded requests) citations
     * from the final chunk.
     */
    public StreamedAnswer collect(Consumer<String> onDelta) {
        StringBuilder text = new StringBuilder();
        String id = null;
        String model = null;
        String finish = null;
        Usage usage = null;
        List<Citation> citations = null;
        int n = 0;
        try (this) {
            for (ChatCompletionChunk c : this) {
                n++;
                id = id == null ? c.id() : id;
                model = c.model() != null ? c.model() : model;
                String piece = c.deltaContent();
                if (!piece.isEmpty()) {
                    text.append(piece);
                    if (onDelta != null) {
                        onDelta.accept(piece);
                    }
                }
                if (c.choices() != null && !c.choices().isEmpty() && c.choices().get(0).finishReason() != null) {
                    finish = c.choices().get(0).finishReason();
                }
                if (c.usage() != null) {
                    usage = c.usage();
                }
                if (c.citations() != null) {
                    citations = c.citations();
                }
            }
        }
        return new StreamedAnswer(id, model, text.toString(), finish, usage, citations, n);
    }

    /** Same as {@link #collect(Consumer)} without a per-delta callback. */
    public StreamedAnswer collect() {
        return collect(null);
    }

    private ChatCompletionChunk readChunk() {
        String data;
        try {
            data = sse.next();
        } catch (UncheckedIOException e) {
            done = true;
            throw e;
        }
        if (data == null || data.equals("[DONE]")) {
            done = true;
            return null;
        }
        JsonNode node;
        try {
            node = mapper.readTree(data);
        } catch (IOException e) {
            done = true;
            throw new RagserveException("the server sent an event that is not JSON: " + SseReader.abbreviate(data), e);
        }
        if (node.has("error") && !node.has("choices")) {
            done = true;
            JsonNode err = node.get("error");
            throw new StreamErrorException(
                    text(err, "message", "stream error"), text(err, "type", "server_error"),
                    text(err, "code", null), text(err, "param", null), data);
        }
        try {
            return mapper.treeToValue(node, ChatCompletionChunk.class);
        } catch (IOException e) {
            done = true;
            throw new RagserveException("unexpected chunk shape: " + SseReader.abbreviate(data), e);
        }
    }

    private static String text(JsonNode n, String field, String dflt) {
        JsonNode v = n == null ? null : n.get(field);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    @Override
    public void close() {
        done = true;
        sse.close();
    }
}
