"""Why a recipient gets no message (or not yet): one code per reason, used everywhere alike.

The dry run counts recipients by these codes and names the people behind each count, the
campaign report shows them per step, the outbox records the code of a send it refused, and the
logs say them. `HELD` is the only one that is not an exclusion: the message waits (quiet hours)
and goes when the window opens.
"""

from __future__ import annotations

import enum


class Reason(str, enum.Enum):
    NO_CONSENT = "no_consent"
    OPTED_OUT = "opted_out"
    CAPPED = "capped"
    OPEN_CONVERSATION = "open_conversation"
    REPLIED = "replied"
    AGENT_REPLIED = "agent_replied"
    NO_CHANNEL = "no_channel"
    WINDOW_CLOSED = "window_closed"
    NO_QUIET_WINDOW = "no_quiet_window"
    EXCLUDED = "excluded"
    LEFT_SEGMENT = "left_segment"
    HOLDOUT = "holdout"
    NOT_A_TEST_ADDRESS = "not_a_test_address"
    UNFILLED = "unfilled"
    HELD = "held"

    @property
    def sentence(self) -> str:
        return _SENTENCES[self]

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def of(cls, code: str) -> "Reason | None":
        try:
            return cls(code)
        except ValueError:
            return None


_LABELS = {
    Reason.NO_CONSENT: "no consent",
    Reason.OPTED_OUT: "opted out",
    Reason.CAPPED: "capped",
    Reason.OPEN_CONVERSATION: "open conversation",
    Reason.REPLIED: "wrote since the start",
    Reason.AGENT_REPLIED: "an agent replied",
    Reason.NO_CHANNEL: "no usable channel",
    Reason.WINDOW_CLOSED: "window closed",
    Reason.NO_QUIET_WINDOW: "no hour outside quiet hours",
    Reason.EXCLUDED: "on the exclude list",
    Reason.LEFT_SEGMENT: "left the segment",
    Reason.HOLDOUT: "holdout",
    Reason.NOT_A_TEST_ADDRESS: "not a test address",
    Reason.UNFILLED: "text cannot be made",
    Reason.HELD: "held for quiet hours",
}

_SENTENCES = {
    Reason.NO_CONSENT: "The customer has not agreed to marketing on this channel.",
    Reason.OPTED_OUT: "The customer opted out on this channel.",
    Reason.CAPPED: "The customer already got as many marketing messages as the frequency cap allows.",
    Reason.OPEN_CONVERSATION: "The customer has an open conversation waiting for us.",
    Reason.REPLIED: "The customer wrote to us since the campaign started.",
    Reason.AGENT_REPLIED: "An agent answered the customer since the campaign started.",
    Reason.NO_CHANNEL: "The customer has no channel this step has a text for.",
    Reason.WINDOW_CLOSED: "The channel's messaging window is closed, and no approved template is set.",
    Reason.NO_QUIET_WINDOW: "No hour of the day is outside quiet hours in all of the customer's time zones.",
    Reason.EXCLUDED: "The customer is on the segment's exclude list.",
    Reason.LEFT_SEGMENT: "The customer is no longer in the segment.",
    Reason.HOLDOUT: "Kept out at random, to measure the campaign's lift.",
    Reason.NOT_A_TEST_ADDRESS: "A test send may only go to an address in [outreach] test_addresses.",
    Reason.UNFILLED: "The text needs a value this customer does not have, or does not fit the channel.",
    Reason.HELD: "Held until quiet hours end in the customer's time zone.",
}
