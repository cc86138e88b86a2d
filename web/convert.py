"""Between Flask and the framework-free vo/ functions: requests in, replies out."""
from flask import Response, request

__all__ = ['request_params', 'request_files', 'base_url', 'to_response']


def request_params():
    """`vo.params.Params` of the query string and the form body."""
    from vo.params import Params

    pairs = list(request.args.items(multi=True))
    if request.method == 'POST':
        pairs += list(request.form.items(multi=True))
    return Params(pairs)


def request_files():
    """Multipart parts by name: bytes (inline uploads)."""
    return {name: part.read() for name, part in request.files.items()} \
        if request.method == 'POST' else {}


def base_url():
    """Public URL of the site root (no trailing slash)."""
    return request.host_url.rstrip('/') + request.script_root


def to_response(reply):
    """A Flask `Response` streaming a `vo.reply.Reply`."""
    resp = Response(reply.body, status=reply.status, content_type=reply.content_type)
    for key, value in reply.headers.items():
        resp.headers[key] = value
    return resp
