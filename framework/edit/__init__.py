"""agenthost edit: a local browser editor for agent.yaml (document, server, chat: one stage each)."""
