package io.ragserve.client.model;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One entry of {@code GET /v1/models}: the base model, LoRA adapters (with {@code parent}), the
 * embedder ({@code kind = "embedding"}) and one {@code rag/<collection>} per collection
 * ({@code kind = "rag"}).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
public record ModelInfo(
        @JsonProperty("id") String id,
        @JsonProperty("owned_by") String ownedBy,
        @JsonProperty("parent") String parent,
        @JsonProperty("kind") String kind,
        @JsonProperty("collection") String collection,
        @JsonProperty("max_model_len") Integer maxModelLen) {}
