"""A real S3-compatible server for tests: moto in server mode on a free localhost port, seeded with boto3."""

from __future__ import annotations

import contextlib
import random
import zipfile
from io import BytesIO
from typing import Iterator

from helpers import image_bytes, synth_image

#: what the tests' AWS clients sign with (moto accepts any)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """Yields the endpoint URL of a fresh moto S3 server on 127.0.0.1; never the network."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def seed(endpoint: str, bucket: str) -> dict[str, bytes]:
    """A bucket of benign objects under ``scan/`` (pictures at two levels, an archive, an empty object) and one
    outside it; returns key -> bytes of those under ``scan/``."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name=CREDENTIALS["AWS_REGION"],
                          aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    client.create_bucket(Bucket=bucket)
    archive = BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/0.jpg", image_bytes(synth_image(700, (64, 48))))
        zf.writestr("inner/noise.bin", random.Random(7).randbytes(64 * 1024))  # makes the archive the largest object
    objects = {f"scan/img_{i}.jpg": image_bytes(synth_image(600 + i, (96, 72))) for i in range(3)}
    objects["scan/deeper/level/img.png"] = image_bytes(synth_image(650, (64, 48)), "PNG")
    objects["scan/bundle.zip"] = archive.getvalue()
    objects["scan/empty.bin"] = b""
    for key, body in {**objects, "elsewhere/not-scanned.jpg": image_bytes(synth_image(666, (32, 32)))}.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return objects
