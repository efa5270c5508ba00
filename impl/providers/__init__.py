"""Model providers: one adapter per wire format (`openai_chat`, `openai_responses`,
`anthropic`) behind the `Provider` protocol of `base`, chosen by `registry`; `http` holds
what every HTTP adapter shares (retries, timeouts, relaying).

May import: config, errors, items and generated; never core, api, tools or store.
"""
