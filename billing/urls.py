from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("o/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("o/<slug:org_slug>/billing/plan/", views.plan_subscribe_view, name="subscribe"),
    path("o/<slug:org_slug>/billing/buy/", views.credits_buy_view, name="buy"),
    path("o/<slug:org_slug>/billing/cancel/", views.subscription_cancel_view, name="cancel"),
    path("o/<slug:org_slug>/billing/resume/", views.subscription_resume_view, name="resume"),
    path("o/<slug:org_slug>/credits/mode/", views.credit_mode_view, name="mode"),
    path("o/<slug:org_slug>/credits/transfer/", views.credits_transfer_view, name="transfer"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/limits/", views.workspace_limits_view, name="limits"),
]
