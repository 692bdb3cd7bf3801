package io.ragserve.client;

/**
 * An error that arrived inside a stream that had already started ({@code data: {"error": ...}} then
 * {@code data: [DONE]}), e.g. the engine going away mid-answer. {@link #status()} is the stream's 200.
 */
public class StreamErrorException extends ApiException {
    private static final long serialVersionUID = 1L;

    public StreamErrorException(String message, String type, String code, String param, String body) {
        super(200, message, type, code, param, null, body);
    }
}
