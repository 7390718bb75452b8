#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, taken from the tests: the JSON
payloads in the providers' test modules, the daemon tests, tests/payloads
and tests/vectors, the shipped config and the README's TOML examples.

Usage: seeds.py REPO_ROOT OUT_DIR; writes OUT_DIR/<target>/<sha1>."""

import glob
import hashlib
import json
import os
import re
import struct
import sys

root, out = sys.argv[1], sys.argv[2]
PROVIDERS = 8
# hmac's selector bits past the provider's: hash, encoding, prefix.
HMAC_VARIANTS = [0, 8, 16, 24, 32, 56]


def read(path):
    with open(os.path.join(root, path), "rb") as f:
        return f.read()


def documents():
    """JSON bodies the tests send, as bytes."""
    found = []
    sources = glob.glob(os.path.join(root, "host/src/providers/**/*.rs"), recursive=True)
    sources += glob.glob(os.path.join(root, "host/tests/daemon/*.rs"))
    for path in sorted(sources):
        text = open(path, encoding="utf-8").read()
        for literal in re.findall(r'r#"(.*?)"#', text, re.S):
            try:
                if isinstance(json.loads(literal), (dict, list)):
                    found.append(literal.encode())
            except ValueError:
                pass
    for path in sorted(glob.glob(os.path.join(root, "host/tests/payloads/*.json"))):
        found.append(open(path, "rb").read())
    for line in read("host/tests/vectors/oneroute.jsonl").splitlines():
        vector = json.loads(line)
        found.append(vector["body"].encode("utf-8", "surrogatepass"))
        if vector.get("stringified"):
            found.append(vector["stringified"].encode("utf-8", "surrogatepass"))
    return [d for d in dict.fromkeys(found) if len(d) <= 64 * 1024]


def selectors():
    for provider in range(PROVIDERS):
        yield provider
    hmac = 1  # "hmac" in providers::known() order
    for variant in HMAC_VARIANTS[1:]:
        yield hmac | variant


def write(target, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


docs = documents()
for doc in docs:
    write("jsjson", doc)
    write("json", doc)
    for selector in selectors():
        write("provider_signed", bytes([selector]) + doc)
    for selector in range(PROVIDERS):
        write("provider_raw", bytes([selector, 1]) + b"\n" + doc)
handshake = b"hub.mode=subscribe&hub.verify_token=fuzz-verify-token&hub.challenge=1158201444"
for selector in range(PROVIDERS):
    write("provider_raw", bytes([selector, 2]) + b"\n" + handshake)

# The vectors are random doubles: a few hundred seed as well as all.
for line in read("host/tests/vectors/js-numbers.txt").splitlines()[:300]:
    bits, _, text = line.decode().partition(" ")
    write("js_number", struct.pack("<Q", int(bits, 16)))
    write("js_number", text.encode())

write("config", read("config/wirehook.toml"))
readme = read("README.md").decode()
for block in re.findall(r"```toml\n(.*?)```", readme, re.S):
    write("config", block.encode())

print(f"seeds: {len(docs)} documents from the tests", file=sys.stderr)
