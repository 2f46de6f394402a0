"""A campaign step of 500 recipients, the real `console sync` process killed with SIGKILL in the
middle of it, then started again: at the Twilio fake, every recipient has exactly one message.

Nothing is mocked but the service: the engine runs as the installed console does in production,
in a process of its own, and dies without a chance to clean up. What it had claimed and not yet
recorded is reconciled with the service's message list after the restart; what it had not
claimed yet is sent then, at the account's pace.
"""

from __future__ import annotations

from console.outreach import planner

import collections
import os
import signal
import subprocess
import sys
import time

from console.outreach import csvimport
from console.outreach.campaign import Campaign, ChannelText, Step
from console.outreach.settings import senders_for
from console.store import Store
from fakes.twilio import FakeTwilio, load_spec
from workspace import workspace_from

OURS = "+15550001111"
RECIPIENTS = 500


def engine(config, data_dir, *args) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "CONSOLE_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "console", "sync", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=data_dir)


def wait_until(check, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_a_kill_9_in_the_middle_of_a_step_sends_nothing_twice_and_skips_no_one(tmp_path, backend):
    fake = FakeTwilio(numbers=(OURS,), spec=load_spec()).start()
    try:
        text = ('[workspace]\nname = "Acme Bakery"\ndefault_region = "GB"\n'
                f'data_dir = "{tmp_path / "data"}"\n'
                '[outreach]\nquiet_hours = "off"\ntimezone = "Europe/London"\n'
                '[outreach.pacing]\nphone = "150/s"\n'
                f'[[accounts]]\nkind = "twilio"\nname = "phone"\naccount_sid = "{fake.account_sid}"\n'
                f'auth_token = "{fake.auth_token}"\nnumbers = ["{OURS}"]\napi_base_url = "{fake.url}"\n'
                'poll_interval = 30\ntimeout = 5\nhistory_days = 0\n') + backend.toml(str(tmp_path / "data"))
        ws = workspace_from(text, tmp_path)
        ws.data_dir = tmp_path / "data"
        store = Store(ws.store_location, "GB", ws.outreach)
        numbers = [f"+4477009{n:05d}" for n in range(RECIPIENTS)]
        rows = "".join(f"Customer {n},,{number},yes,2026-01-05\n" for n, number in enumerate(numbers))
        parsed, refused = csvimport.parse("name,email,phone,consent_sms,consent_date\n" + rows, "all.csv", "GB",
                                          time.time())
        store.import_contacts(parsed, refused)
        segment = store.save_segment("everyone", "channel:sms")
        store.save_campaign(Campaign(None, "Big news", segment, steps=[
            Step(1, 0, "order", ("sms",), {"sms": ChannelText(body="Hi {first_name}, we bake on Sundays now!")})]))
        plan = planner.launch(store, "Big news", senders_for(ws), "ana")
        assert len(plan.now) == RECIPIENTS
        store.close()

        first = engine(ws.path, tmp_path)
        assert wait_until(lambda: len(fake.outbound()) >= 120, 60), "the engine sent nothing"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        sent_before = len(fake.outbound())
        assert sent_before < RECIPIENTS - 50, "killed too late to be in the middle of the step"

        again = engine(ws.path, tmp_path, "--once")
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err.decode()

        per_recipient = collections.Counter(m.to for m in fake.outbound())
        assert sorted(per_recipient) == sorted(numbers), "someone was skipped"
        assert set(per_recipient.values()) == {1}, "someone got it twice"
        store = Store(ws.store_location, "GB", ws.outreach)
        progress = store.campaign_progress("Big news")
        assert (progress.sent, progress.waiting, progress.sending) == (RECIPIENTS, 0, 0)
        store.close()
        errors = ws.data_dir / "errors.log"
        assert not errors.exists() or not errors.read_text().strip(), errors.read_text()
    finally:
        fake.stop()
    assert fake.violations == []
