"""Example questions on the page come from the data, not the code: staff choose them per report on the
工作人员 page, else they are the report's evaluation items that the service answers (reportqa.examples;
the shipped report's are in data/examples.json). This module holds only what the page needs to show them.
"""

Groups = dict[str, list[str]]  # group label -> questions, in the order shown

MAX_GROUPS = 6  # example slots on the chat page
# A group staff may add to show what a refusal looks like; its questions are never suggested after one.
OFF_TOPIC_GROUP = "报告以外的问题"
