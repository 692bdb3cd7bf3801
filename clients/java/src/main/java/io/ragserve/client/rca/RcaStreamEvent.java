package io.ragserve.client.rca;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * One event of a streamed analysis, in order: {@code retrieval} (runbooks), {@code tool_call}*,
 * {@code analysis_delta}* (the model's JSON, for display), {@code analysis_done}, then
 * {@code result} (the verified analysis) or {@code error}.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record RcaStreamEvent(
        @JsonProperty("type") String type,
        @JsonProperty("runbooks") List<RunbookCitation> runbooks,
        @JsonProperty("tool_call") ToolCallRecord toolCall,
        @JsonProperty("delta") String delta,
        @JsonProperty("result") RcaAnalysis result,
        @JsonProperty("error") StreamError error) {

    @JsonIgnoreProperties(ignoreUnknown = true)
    public record StreamError(
            @JsonProperty("message") String message,
            @JsonProperty("type") String type,
            @JsonProperty("param") String param,
            @JsonProperty("code") String code) {}
}
