#!/usr/bin/env python3
"""huggingface_hub's side of the cache interoperability tests (tests/hub/main.rs).

    interop.py find REPO FILE...      # offline: where huggingface_hub finds each file in the cache
    interop.py download REPO          # online (HF_ENDPOINT): snapshot_download into the cache

Both print one JSON object on stdout. The cache is HF_HUB_CACHE, as for any huggingface_hub user.
"""

import hashlib
import json
import sys

from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    command, repo, files = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "find":
        found = {}
        for file in files:
            path = hf_hub_download(repo, file, local_files_only=True)
            found[file] = {"path": path, "sha256": sha256(path)}
        snapshot = snapshot_download(repo, local_files_only=True)
        repos = [
            {"repo_id": r.repo_id, "size": r.size_on_disk, "revisions": sorted(rev.commit_hash for rev in r.revisions)}
            for r in scan_cache_dir().repos
        ]
        print(json.dumps({"files": found, "snapshot": snapshot, "repos": repos}))
    elif command == "download":
        print(json.dumps({"snapshot": snapshot_download(repo)}))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
