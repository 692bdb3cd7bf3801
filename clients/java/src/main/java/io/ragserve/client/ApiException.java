package io.ragserve.client;

import java.time.Duration;
import java.util.Optional;

/**
 * An error answered by ragserve in OpenAI's envelope {@code {"error": {"message", "type", "param", "code"}}}.
 *
 * <p>Subclasses name the common statuses ({@link NotFoundException}, {@link RateLimitException}, ...);
 * {@link #retryAfter()} carries the server's {@code Retry-After} (429 and 503).
 */
public class ApiException extends RagserveException {
    private static final long serialVersionUID = 1L;

    private final int status;
    private final String type;
    private final String code;
    private final String param;
    private final Duration retryAfter;
    private final String body;

    public ApiException(int status, String message, String type, String code, String param,
                        Duration retryAfter, String body) {
        super(describe(status, message, type, code, param));
        this.status = status;
        this.type = type;
        this.code = code;
        this.param = param;
        this.retryAfter = retryAfter;
        this.body = body;
    }

    private static String describe(int status, String message, String type, String code, String param) {
        StringBuilder sb = new StringBuilder().append(status).append(' ').append(type);
        if (code != null) {
            sb.append(" (").append(code).append(')');
        }
        if (param != null) {
            sb.append(" [param ").append(param).append(']');
        }
        return sb.append(": ").append(message).toString();
    }

    /** Builds the subclass that fits the HTTP status. */
    static ApiException of(int status, String message, String type, String code, String param,
                           Duration retryAfter, String body) {
        return switch (status) {
            case 400 -> new BadRequestException(status, message, type, code, param, retryAfter, body);
            case 401 -> new AuthenticationException(status, message, type, code, param, retryAfter, body);
            case 403 -> new PermissionDeniedException(status, message, type, code, param, retryAfter, body);
            case 404 -> new NotFoundException(status, message, type, code, param, retryAfter, body);
            case 429 -> new RateLimitException(status, message, type, code, param, retryAfter, body);
            case 503 -> new ServiceUnavailableException(status, message, type, code, param, retryAfter, body);
            default -> new ApiException(status, message, type, code, param, retryAfter, body);
        };
    }

    /** The HTTP status (for an error inside a stream: the stream's own status, 200). */
    public int status() {
        return status;
    }

    /** OpenAI's error type, e.g. {@code invalid_request_error}, {@code rate_limit_error}. */
    public String type() {
        return type;
    }

    /** Machine-readable code, e.g. {@code model_not_found}, {@code context_length_exceeded}; may be null. */
    public String code() {
        return code;
    }

    /** The request parameter at fault, e.g. {@code model}; may be null. */
    public String param() {
        return param;
    }

    /** The message from the server, meant for people. */
    public String errorMessage() {
        String m = getMessage();
        int i = m.indexOf(": ");
        return i < 0 ? m : m.substring(i + 2);
    }

    /** How long the server asked the client to wait before retrying ({@code Retry-After}), if it said. */
    public Optional<Duration> retryAfter() {
        return Optional.ofNullable(retryAfter);
    }

    /** The raw response body. */
    public String body() {
        return body;
    }
}
