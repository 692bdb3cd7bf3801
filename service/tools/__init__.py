"""Function calling: OpenAI tools with guaranteed-valid calls, and server-side tools (`server_tools`)."""
