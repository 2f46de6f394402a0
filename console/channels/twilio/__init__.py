"""A Twilio account: SMS, MMS and WhatsApp to and from the business's numbers.

settings.py reads the config, channel.py pulls and sends, http.py is the HTTP client and what
its errors mean.

Inbound comes from polling the account's Messages list (no public URL, no webhook). The list is
newest first and has no "changed since" filter, so the cursor keeps a high-water mark: the
`date_created` of the newest message covered, with the SIDs seen at exactly that second (Twilio
dates have one-second precision, and several messages can share a second). A pull reads pages
from the newest until it reaches the mark; when nothing is new that is one request for a small
first page. A long catch-up (the first sync reads `history_days` of history) is done in batches of
pages, the unfinished sweep's next page kept in the cursor so a restart resumes it; the mark moves
only when a sweep is complete. The store de-duplicates by SID, so a repeated pull is harmless.

Outbound messages that are not final yet (queued, sent...) are watched in the cursor: their
status is read from the pages fetched anyway, or fetched one by one, until they are delivered,
failed or too old to matter. A very recent outbound message is reported once more on the next
pull whatever its status, because it may be our own send whose answer the store records after
this pull (and with the older status Twilio gave in that answer).

A send that lost its answer (the connection dropped after the POST) is looked up in the list
before anything is retried: Twilio has no idempotency key for Messages, so a second POST would
reach the customer twice. `reconcile()` does the same after a crash.

WhatsApp free text is refused (PermanentError) without being sent when the customer has not
written to that sender within 24 hours: Twilio would accept it and fail it later with 63016.
Templates (`[accounts.templates]`, name -> ContentSid) are sent with ContentVariables instead.

STOP, START and the other keywords arrive as ordinary messages: the store reads them, on every
channel alike, as opt-outs of that channel (console/store/consent.py); Twilio confirms its own
words to the customer itself. A send refused with 21610 withdraws the number's SMS consent.

SMS and WhatsApp from one phone number are one "phone" identity. Thread keys are
`"<channel>:<our number>:<customer number>"`, so a reply leaves from the number the customer wrote
to. All calls go through the official `twilio` library in a worker thread; its HTTP client is
pointed at `api_base_url` (tests use a local fake). The auth token never appears in an error
message or a log line.
"""

from console.channels.twilio.channel import KIND, TwilioChannel
from console.channels.twilio.http import delivery_detail
from console.channels.twilio.settings import configure

__all__ = ["KIND", "TwilioChannel", "configure", "delivery_detail"]
