from django.urls import path

from usage.studio import views

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
]
