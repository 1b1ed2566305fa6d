"""Where bytes live: local paths and object-store URIs (`s3://bucket/key`) behind one API.

Object stores go through `pyarrow.fs`, which reads credentials and the endpoint the way
the AWS tools do (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
~/.aws/config and credentials, AWS_PROFILE, AWS_ENDPOINT_URL for an S3-compatible
server): vidgist never takes a secret on its command line or in its config.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import av
import pyarrow.fs as pafs

# Schemes pyarrow.fs serves. Other URLs (http://, rtsp://) go to FFmpeg as they are.
OBJECT_STORES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs")


def is_remote(uri: str) -> bool:
    """A URI with a scheme other than file://."""
    return "://" in uri and not uri.startswith("file://")


def in_object_store(uri: str) -> bool:
    return uri.split("://", 1)[0].lower() in OBJECT_STORES if "://" in uri else False


@functools.lru_cache(maxsize=64)
def _store_of(scheme: str, bucket: str) -> pafs.FileSystem:
    # One client per bucket and process: building one resolves credentials and the
    # region, which costs a request or more.
    return pafs.FileSystem.from_uri(f"{scheme}://{bucket}")[0]


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """(file system, path within it) for a local path or an object-store URI."""
    if not in_object_store(uri):
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))
    scheme, rest = uri.split("://", 1)
    bucket = rest.split("/", 1)[0]
    return _store_of(scheme, bucket), rest.rstrip("/")


@contextmanager
def open_container(uri: str) -> Iterator[av.container.InputContainer]:
    """A PyAV container on `uri`. An object is read through a seekable file whose reads
    become ranged GETs, so only the bytes the demuxer asks for travel (no whole-file copy)."""
    if not in_object_store(uri):
        with av.open(uri) as container:
            yield container
        return
    fs, path = filesystem(uri)
    with fs.open_input_file(path) as handle, av.open(handle) as container:
        yield container
