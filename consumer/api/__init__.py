"""The HTTP API (`faceguard serve`): the original service's routes on the worker's pipeline.

service.py     the composition root: settings in, a uvicorn server out, SIGTERM drained
app.py         the FastAPI application: routes, the problem handler, metrics middleware
pool.py        the processing threads (one anonymizer per thread) and the bounded queue before them
body.py        the request body read with the byte limit enforced while streaming; the image and options
negotiation.py which representation the client asked for (Accept)
auth.py        bearer JWT verification (HS256 secret or a JWKS file)
problems.py    RFC 9457 problem documents, mapped from the error tree
bridge.py      POST /v1/requests: an ImageRequest published to the requests topic
"""
