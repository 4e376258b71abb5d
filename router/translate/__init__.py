"""Other wire formats onto the engine's one (OpenAI chat completions) and back.

`responses` speaks OpenAI's Responses API, `messages` Anthropic's Messages API. Each turns a
client's request into a chat body for `Router.serve` (a 400 naming the field for anything it
cannot carry), a chat completion into the client's reply, and a stream of chat chunks into the
client's stream events. Deployments whose provider speaks the format itself are passed
through instead (see `router.dispatch.Native`).
"""
