"""Example questions of the shipped report, by topic; each is checked to be answered (tests/test_ui.py).

The last group is one the report does not cover, to show what a refusal looks like.
"""


EXAMPLE_GROUPS: dict[str, list[str]] = {
    "便民服务": ["全市建成了多少个便民服务站？", "多少个高频事项实现全市通办？", "推出了多少个“一件事一次办”事项？"],
    "执法": ["有多少人获得行政执法资格？", "行政执法人员完成了多少课时培训？", "包容审慎监管执法“四张清单”涉及多少项内容？"],
    "复议与调解": ["行政复议体制改革做了什么？", "如何推动行政机关负责人出庭应诉？"],
    "数字政府": ["“一网通办”有什么进展？", "“连政通”App是什么？", "“一网协同”平台获得了什么荣誉？"],
    "2024年打算": ["2024年有哪些工作打算？", "2024年在数字政府方面有什么打算？", "法治政府建设还有哪些不足？"],
    "报告以外的问题": ["大连地铁几点停运？"],
}


OFF_TOPIC_GROUP = "报告以外的问题"
