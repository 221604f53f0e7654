"""The AI tools Qolaba meters, and how reports group them. Below every app: models, forms and reports all name tools."""

from __future__ import annotations

from django.db import models


class Tool(models.TextChoices):
    CHAT = "chat", "Chat"
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    SPEECH = "speech", "Speech"
    MUSIC = "music", "Music"


class ReportGroup(models.TextChoices):
    CHATBOT = "chatbot", "Chatbot"
    IMAGE_SPEECH = "image_speech", "Image & Speech"


TOOL_GROUP: dict[str, ReportGroup] = {
    Tool.CHAT: ReportGroup.CHATBOT,
    Tool.IMAGE: ReportGroup.IMAGE_SPEECH,
    Tool.VIDEO: ReportGroup.IMAGE_SPEECH,
    Tool.SPEECH: ReportGroup.IMAGE_SPEECH,
    Tool.MUSIC: ReportGroup.IMAGE_SPEECH,
}
