"""Compatibility name: SMS segment counting lives with the SMS catalog entry now
(console.channels.catalog.sms; the composer should call `catalog.measure("sms", text)`). Kept
only while console/ui still imports `console.sms.segment_info`; delete it with that import."""

from console.channels.catalog.sms import SegmentInfo, segment_info  # noqa: F401
