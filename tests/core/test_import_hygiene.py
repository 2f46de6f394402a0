"""The core never imports the UI toolkit: channels, store, config, sync and the sanitizer run headless."""

import subprocess
import sys

CORE = [
    "console.model", "console.config", "console.sanitize", "console.identity", "console.store", "console.sync",
    "console.channels", "console.channels.base", "console.channels.demo", "console.channels.email",
    "console.channels.twilio", "console.channels.telegram", "console.channels.mastodon", "console.channels.meta",
    "console.channels.catalog", "console.channels.catalog.length", "console.channels.catalog.sms",
    "console.channels.reconcile", "console.demo_workspace", "console.synclock", "console.demo_data",
]


def test_core_modules_import_neither_textual_nor_rich():
    code = (
        "import importlib, importlib.util, sys\n"
        # httpx imports its command-line tool (which uses rich) whenever `click` happens to be
        # installed (a test dependency pulls it in): that is httpx's choice, not the core's.
        "sys.modules['httpx._main'] = None\n"
        f"for name in {CORE!r}:\n"
        "    if importlib.util.find_spec(name) is not None:\n"
        "        importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"core imported: {done.stdout.strip()}"


def test_the_store_imports_no_channel():
    """The store knows no channel's rules (email's "Re:" prefixes are applied by its adapter)."""
    code = ("import sys, console.store\n"
            "print(','.join(sorted(m for m in sys.modules if m.startswith('console.channels'))))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"the store imported: {done.stdout.strip()}"
