"""One module per vendor, each a :class:`~smallyi.notify.base.Notifier`; ``NOTIFIERS`` maps kinds to them."""

from __future__ import annotations

from smallyi.notify.base import Notifier
from smallyi.notify.vendors import dingtalk, feishu, slack, webhook, wecom

NOTIFIERS: dict[str, Notifier] = {
    n.kind: n for n in (wecom.WeCom(), dingtalk.DingTalk(), feishu.Feishu(), slack.Slack(), webhook.Webhook())
}
