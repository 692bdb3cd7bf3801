package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/** A whole chat answer; {@code citations} is set for grounded requests (else null). */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ChatCompletion(
        @JsonProperty("id") String id,
        @JsonProperty("object") String object,
        @JsonProperty("created") long created,
        @JsonProperty("model") String model,
        @JsonProperty("choices") List<Choice> choices,
        @JsonProperty("usage") Usage usage,
        @JsonProperty("citations") List<Citation> citations) {

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Choice(
            @JsonProperty("index") int index,
            @JsonProperty("message") ChatMessage message,
            @JsonProperty("finish_reason") String finishReason) {}

    /** The first choice's text ("" when it has none). */
    public String content() {
        if (choices == null || choices.isEmpty() || choices.get(0).message() == null) {
            return "";
        }
        String c = choices.get(0).message().content();
        return c == null ? "" : c;
    }

    /** The first choice's finish reason: stop, length, tool_calls or content_filter. */
    public String finishReason() {
        return choices == null || choices.isEmpty() ? null : choices.get(0).finishReason();
    }
}
