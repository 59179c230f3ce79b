"""Builds two versions of a tiny Tutor plugin, tutor-contrib-driftcheck, as
wheels in OUTDIR: 1.0.0 and 2.0.0 differ in every way a default review
groups (a behaviour default, a value derived from it, one embedding a
password, a version and an image, new keys, a new secret, removed keys, a
removed key the site still sets, a changed default the site sets itself).

    python3 drift_plugin.py OUTDIR
"""

import base64
import hashlib
import os
import sys
import zipfile

COMMON = [
    ("DRIFTCHECK_DATABASE", "{% if DRIFTCHECK_SOURCE == 'beta' %}newdb{% else %}olddb{% endif %}"),
    ("DRIFTCHECK_USER", "drifter"),
    ("DRIFTCHECK_URL", "drift://{{ DRIFTCHECK_USER }}:{{ DRIFTCHECK_PASSWORD }}@db:5000/{{ DRIFTCHECK_DATABASE }}"),
    ("DOCKER_IMAGE_DRIFTCHECK", "example/driftcheck:{{ DRIFTCHECK_VERSION }}"),
]

VERSIONS = {
    "1.0.0": {
        "defaults": [
            ("DRIFTCHECK_VERSION", "1.0.0"),
            ("DRIFTCHECK_SOURCE", "alpha"),
            ("DRIFTCHECK_LIMIT", "10"),
            ("DRIFTCHECK_OLD_SETTING", "x"),
            ("DRIFTCHECK_SITE_SETTING", "default"),
        ],
        "unique": [("DRIFTCHECK_PASSWORD", "{{ 24|random_string }}")],
    },
    "2.0.0": {
        "defaults": [
            ("DRIFTCHECK_VERSION", "2.0.0"),
            ("DRIFTCHECK_SOURCE", "beta"),
            ("DRIFTCHECK_LIMIT", "20"),
            ("DRIFTCHECK_PORT", "7000"),
        ],
        "unique": [
            ("DRIFTCHECK_PASSWORD", "{{ 24|random_string }}"),
            ("DRIFTCHECK_API_TOKEN", "{{ 32|random_string }}"),
        ],
    },
}


def plugin_source(spec):
    return (
        "from tutor import hooks\n\n"
        f"hooks.Filters.CONFIG_DEFAULTS.add_items({spec['defaults'] + COMMON!r})\n"
        f"hooks.Filters.CONFIG_UNIQUE.add_items({spec['unique']!r})\n"
    )


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build(outdir, version, spec):
    info = f"tutor_contrib_driftcheck-{version}.dist-info"
    files = {
        "tutordriftcheck/__init__.py": b"",
        "tutordriftcheck/plugin.py": plugin_source(spec).encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: tutor-contrib-driftcheck\nVersion: {version}\n"
            "Summary: a test plugin for plan's default review\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: plan-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": b"[tutor.plugin.v1]\ndriftcheck = tutordriftcheck.plugin\n",
    }
    record = [record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(outdir, f"tutor_contrib_driftcheck-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for v, s in VERSIONS.items():
        print(build(out, v, s))
