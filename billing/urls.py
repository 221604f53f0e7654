from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("o/<slug:org_slug>/billing/", views.billing_page, name="page"),
    path("o/<slug:org_slug>/billing/plan/", views.plan_subscribe_view, name="plan_subscribe"),
    path("o/<slug:org_slug>/billing/buy/", views.credits_buy_view, name="credits_buy"),
    path("o/<slug:org_slug>/billing/invoices/<str:number>.pdf", views.invoice_pdf, name="invoice_pdf"),
    path("o/<slug:org_slug>/billing/cancel/", views.subscription_cancel_view, name="subscription_cancel"),
    path("o/<slug:org_slug>/billing/resume/", views.subscription_resume_view, name="subscription_resume"),
    path("o/<slug:org_slug>/credits/mode/", views.credit_mode_switch_view, name="credit_mode_switch"),
    path("o/<slug:org_slug>/credits/transfer/", views.credits_transfer_view, name="credits_transfer"),
    path("o/<slug:org_slug>/w/<slug:ws_slug>/limits/", views.workspace_limit_set_view, name="workspace_limit_set"),
]
