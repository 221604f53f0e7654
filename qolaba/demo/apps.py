from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "qolaba.demo"
    label = "demo"
    verbose_name = "Demo data"
