"""Chinese place names a question can name: provinces and the larger cities.

jieba tags many words as places (台风, 上门); a question's place is checked
against this list, or must end in 省/市/区/县 and be tagged a place.
"""
from __future__ import annotations

PROVINCES = """
北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 海南
四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门
""".split()

CITIES = """
沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛 长春 吉林 哈尔滨 齐齐哈尔 大庆
石家庄 唐山 秦皇岛 保定 邯郸 太原 大同 呼和浩特 包头 济南 青岛 烟台 威海 潍坊 淄博 临沂 南京 苏州 无锡
常州 南通 徐州 扬州 杭州 宁波 温州 绍兴 嘉兴 金华 台州 合肥 芜湖 福州 厦门 泉州 南昌 赣州 郑州 洛阳
武汉 宜昌 襄阳 长沙 株洲 岳阳 广州 深圳 珠海 佛山 东莞 中山 惠州 汕头 海口 三亚 南宁 桂林 柳州 成都
绵阳 贵阳 遵义 昆明 西安 兰州 西宁 银川 乌鲁木齐 拉萨 雄安
""".split()

KNOWN_PLACES = frozenset(PROVINCES + CITIES)
PLACE_SUFFIXES = ("省", "市", "区", "县", "州", "镇")
