package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/** One collection of the knowledge base ({@code GET /v1/collections}). */
@JsonIgnoreProperties(ignoreUnknown = true)
public record CollectionInfo(
        @JsonProperty("name") String name,
        @JsonProperty("documents") int documents,
        @JsonProperty("chunks") int chunks,
        @JsonProperty("embedding_model") String embeddingModel,
        @JsonProperty("dimension") int dimension,
        @JsonProperty("version") int version) {}
