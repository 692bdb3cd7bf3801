package io.ragserve.client;

import java.time.Duration;

/** HTTP 429: the key's requests or tokens per minute are used up; see {@link #retryAfter()}. */
public class RateLimitException extends ApiException {
    private static final long serialVersionUID = 1L;

    public RateLimitException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
