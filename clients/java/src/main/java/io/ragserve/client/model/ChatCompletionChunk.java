package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * One streamed event. The same {@code id} on every chunk; {@code finishReason} only on the last
 * choice chunk; with {@code stream_options.include_usage} a final chunk with empty {@code choices}
 * and {@code usage}. For grounded requests {@code citations} rides on the final chunk before
 * {@code [DONE]} (null on the others).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ChatCompletionChunk(
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
            @JsonProperty("delta") Delta delta,
            @JsonProperty("finish_reason") String finishReason) {}

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record Delta(
            @JsonProperty("role") String role,
            @JsonProperty("content") String content,
            @JsonProperty("tool_calls") JsonNode toolCalls) {}

    /** The text this chunk adds to the first choice ("" when none). */
    public String deltaContent() {
        if (choices == null || choices.isEmpty() || choices.get(0).delta() == null) {
            return "";
        }
        String c = choices.get(0).delta().content();
        return c == null ? "" : c;
    }
}
