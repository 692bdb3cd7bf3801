"""The chat pipeline: route -> guard -> ground -> tools or generate -> relay -> citations.

route.py     what a request asks for, parsed once (`ChatRoute`: public and engine model, RAG plan)
grounding.py retrieval and the grounded prompt within the token budget (`Grounder`)
relay.py     the engine's answer back to the client, whole or streamed, with the output guard,
             citations and latency metrics (`Relay`)
pipeline.py  the stages in order for `/v1/chat/completions` and `/v1/completions` (`ChatPipeline`)
"""
