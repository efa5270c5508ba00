"""The turn pipeline: a create request becomes a response, whichever transport carries it.

`pipeline.start` is the one entry point (also `compact` and `count_tokens`); `services`
holds the container built at start-up; `turn` runs a response's rounds and tool loop;
`builder` turns model events into Responses items and events; `background` keeps the
responses running in this process. The rest are the pipeline's steps: `intake` (input
items, supported parameters), `coherence` (call ids and approvals), `conversations`,
`attachments` (file references inlined), `compaction`, `structured` (JSON-schema output
where a provider lacks it).

May import: tools, providers, vectors, files, store and the shared modules; never api.
"""
