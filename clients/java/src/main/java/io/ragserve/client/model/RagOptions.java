package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.Map;

/**
 * ragserve's {@code rag} extension field: ground the answer in a collection.
 *
 * <p>{@code mode} is {@code hybrid}, {@code dense} or {@code bm25}; {@code filters} maps
 * {@code document_id} or a metadata key to a value or a list of values; {@code language} is
 * {@code auto}, {@code en} or {@code zh}; {@code query} overrides the retrieval query (by default the
 * last user message). Null fields are left to the server's defaults.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RagOptions(
        @JsonProperty("collection") String collection,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("mode") String mode,
        @JsonProperty("filters") Map<String, Object> filters,
        @JsonProperty("language") String language,
        @JsonProperty("query") String query) {

    public static RagOptions collection(String collection) {
        return new RagOptions(collection, null, null, null, null, null);
    }

    public RagOptions withTopK(int k) {
        return new RagOptions(collection, k, mode, filters, language, query);
    }

    public RagOptions withMode(String m) {
        return new RagOptions(collection, topK, m, filters, language, query);
    }

    public RagOptions withFilters(Map<String, Object> f) {
        return new RagOptions(collection, topK, mode, f, language, query);
    }

    public RagOptions withLanguage(String l) {
        return new RagOptions(collection, topK, mode, filters, l, query);
    }
}
