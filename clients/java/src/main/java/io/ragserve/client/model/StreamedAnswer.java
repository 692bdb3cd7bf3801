package io.ragserve.client.model;

import java.util.List;

/** A streamed answer put back together: text, finish reason, usage (if asked) and citations (if grounded). */
public record StreamedAnswer(
        String id,
        String model,
        String content,
        String finishReason,
        Usage usage,
        List<Citation> citations,
        int chunks) {}
