"""`gankit serve`: a local web app to explore trained generators live.

Layout: `models` loads what is served (run folders now; a pretrained source later plugs in
through `ServedModel.from_run`), `directions` finds the slider directions, `query` checks every
request's values, `engine` turns a checked view into latents, images and D's scores,
`encode` writes PNG and GIF bytes, and `app` is the Starlette application with its page in
`static/`. The web libraries (Starlette, uvicorn) are the optional `serve` extra: only `app`
and the CLI import them.
"""
