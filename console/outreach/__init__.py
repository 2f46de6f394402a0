"""Outreach: reaching customers first, with their consent and with restraint.

How the work is cut (the UI only edits and shows; everything here runs headless in the engine):

- `console/outreach/` (this package) holds the *decisions*, as pure code with no SQL, no network
  and no UI: the reason codes (`reasons`), the `[outreach]` settings (`settings`), the
  recipient's local time and quiet hours (`zones`), the restraint verdict (`restraint`: the one
  function every send path asks), the segment grammar (`segments`), the exact text a recipient
  gets (`messages`), pacing (`pacing`), the CSV import's row checks (`csvimport`), report
  formats (`report`) and the engine's campaign duty (`duty`).
- `console/store/` holds the *facts* and their SQL, one mixin each: consent and opt-out keywords
  (`consent`), saved segments (`segments`), campaigns, their dry run and launch (`campaigns`),
  what restraint needs to know about recipients, gathered in bulk (`restraint`), and the
  measurements (`measure`).
- The outbox's claim (console/store/outbox.py `claim_due`) asks the same restraint verdict for
  every marketing, test or acknowledgement row before it is handed to a channel, so no screen,
  campaign setting or hand-written row can get around consent, the frequency cap, quiet hours
  or a channel's window.
"""
