"""Building blocks of the server-side tools: the outbound URL guard (`guard`) and the web
search backends (`web_search`). The tool loop in `core` calls them; they know nothing of it."""
