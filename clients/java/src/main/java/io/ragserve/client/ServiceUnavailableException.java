package io.ragserve.client;

import java.time.Duration;

/** HTTP 503: the engine is starting or restarting, or the admission queue is full; see {@link #retryAfter()}. */
public class ServiceUnavailableException extends ApiException {
    private static final long serialVersionUID = 1L;

    public ServiceUnavailableException(int status, String message, String type, String code, String param,
            Duration retryAfter, String body) {
        super(status, message, type, code, param, retryAfter, body);
    }
}
