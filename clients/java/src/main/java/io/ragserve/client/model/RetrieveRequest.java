package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/** {@code POST /v1/retrieve}: null collection means the server's default; mode hybrid, dense or bm25. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RetrieveRequest(
        @JsonProperty("query") String query,
        @JsonProperty("collection") String collection,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("mode") String mode,
        @JsonProperty("filters") Map<String, Object> filters) {

    public static RetrieveRequest of(String query, String collection, int topK) {
        return new RetrieveRequest(query, collection, topK, null, null);
    }
}
