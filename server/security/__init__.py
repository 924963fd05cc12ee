"""Who may call what: authentication of API keys and sessions, and the route guard."""
