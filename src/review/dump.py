# Prints, as one JSON object on stdout, tutor's configuration as tutor
# itself loads it for one project root: the plugins enabled in config.yml
# loaded (whichever copy of a plugin comes first on sys.path), the values
# rendered, with what is needed to judge a change. Run by `plan` with
# tutor's own Python; it changes nothing.
#   argv: ROOT DISTRIBUTION
import json
import sys

real_stdout = sys.stdout
sys.stdout = sys.stderr  # tutor's notices must not mix with the JSON

from importlib import metadata

from tutor import config as tutor_config
from tutor import hooks, plugins

root, dist = sys.argv[1], sys.argv[2]
try:
    version = metadata.version(dist)
except metadata.PackageNotFoundError:
    version = None

hooks.Actions.CORE_READY.do()
hooks.Actions.PROJECT_ROOT_READY.do(root)
# Whether this project enables the distribution's tutor plugin(s): if not, none of it loads.
try:
    names = {ep.name for ep in metadata.distribution(dist).entry_points if ep.group == "tutor.plugin.v1"}
except metadata.PackageNotFoundError:
    names = set()
enabled = bool(names & set(plugins.iter_loaded()))
user = tutor_config.get_user(root)
base = tutor_config.get_base()
defaults = tutor_config.get_defaults()
unique = [name for name, _ in hooks.Filters.CONFIG_UNIQUE.apply([])]
full = tutor_config.load_full(root)
raw = dict(defaults)
raw.update(base)

json.dump(
    {
        "version": version,
        "enabled": enabled,
        "user": sorted(user),
        "unique": sorted(unique),
        "raw": raw,
        "full": full,
    },
    real_stdout,
    default=str,
    sort_keys=True,
)
