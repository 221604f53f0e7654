from django.urls import path

from usage.studio import views
from usage.studio.models import MEDIA_TOOLS

app_name = "studio"

BASE = "o/<slug:org_slug>/w/<slug:ws_slug>/studio/"

urlpatterns = [
    path(BASE, views.studio_chat, name="chat"),
    path(f"{BASE}chat/price/", views.chat_price, name="chat_price"),
    path(f"{BASE}chat/send/", views.chat_turn_start_view, name="chat_turn_start"),
    path(f"{BASE}chat/<int:thread_id>/", views.chat_thread, name="chat_thread"),
    path(f"{BASE}chat/<int:thread_id>/send/", views.chat_turn_start_view, name="chat_thread_turn_start"),
    path(f"{BASE}chat/<int:thread_id>/rename/", views.chat_thread_rename_view, name="chat_thread_rename"),
    path(f"{BASE}chat/<int:thread_id>/delete/", views.chat_thread_delete_view, name="chat_thread_delete"),
    path(f"{BASE}chat/<int:thread_id>/turns/<int:turn_id>/", views.chat_turn, name="chat_turn"),
    path(f"{BASE}chat/<int:thread_id>/turns/<int:turn_id>/stop/", views.chat_turn_stop_view, name="chat_turn_stop"),
    path(f"{BASE}jobs/<int:job_id>/", views.studio_job, name="job"),
    path(f"{BASE}jobs/<int:job_id>/cancel/", views.studio_job_cancel_view, name="job_cancel"),
    path(f"{BASE}jobs/<int:job_id>/media/<int:index>/", views.studio_job_media, name="job_media"),
]
# Image, Video, Speech, Music: one page each (`studio:image`, ...), its live price and its run.
for _tool in MEDIA_TOOLS:
    urlpatterns += [
        path(f"{BASE}{_tool}/", views.studio_media, {"tool": _tool}, name=_tool),
        path(f"{BASE}{_tool}/price/", views.media_price, {"tool": _tool}, name=f"{_tool}_price"),
        path(f"{BASE}{_tool}/run/", views.media_job_start_view, {"tool": _tool}, name=f"{_tool}_run"),
    ]
