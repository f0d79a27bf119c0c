#!/usr/bin/env python3
"""Seeded generator of realistic shop customer records with ground truth.

For the identity-resolution benchmark: it writes canonical records (the
shapes of connectors/src/custom/canonical.rs), one JSON object a line, each
with two extra fields, `connection_id` and `default_region`, plus a truth
file mapping every (connection_id, external_id) to the person behind it.

    python3 scripts/gen-shop-records.py --people 30000 --seed 7 --out /work/gen-out
    python3 scripts/gen-shop-records.py --records 1000000 --seed 7 --out /work/gen-out
    python3 scripts/gen-shop-records.py --ceiling /work/gen-out/shop-100000.jsonl

Outputs `DIR/shop-N.jsonl` (sorted by time, like a backfill) and
`DIR/shop-N.truth.csv` (`connection_id,external_id,entity`), N being the
number given to --people or --records. The same seed gives byte-identical
files (one `random.Random`, no set or hash ordering). Records go to monthly
bucket files while people are generated, then each bucket is sorted and
appended, so memory stays at one month of records.

`--ceiling FILE` prints the "exact key ceiling": pairwise recall and
precision of joining records only on an identical lower-cased email or on
identical phone digits (formatting, country code and trunk 0 stripped).

Connections (default_region): taobao-1 (CN), jd-1 (CN), shopify-1 (US),
woocommerce-1 (GB), whatsapp-1 (GB), wechat-1 (CN), email-1 (US),
judgeme-1 (US). Regions are per connection, as in the hub, so a German
local number on shopify-1 is read as American: realistic breakage.

Noise, on purpose (each is a real-world trap for resolution):
- Chinese people: Han names (王伟) on Chinese shops; pinyin on western shops
  and email in several orders and cases (Wang Wei / WANG Wei / wei wang /
  Wei Wang / Xiu-Ying Li / XiuYing), sometimes an adopted English first name
  (Kevin Wang). Surnames and given names are weighted like the real
  distribution, so 王伟, 李娜, 张伟 recur as different people; pinyin
  collapses distinct surnames (王/汪 -> Wang, 徐/许 -> Xu).
- Taobao: the buyer nick (tb_1234, wangwei1988, 快乐小猪) as name, phones
  masked (138****5678), emails masked (ab***@qq.com) or missing; receiver
  address with province / city / district. JD: real Han name, phones masked
  or in full in any format.
- Western people: nicknames (William/Bill/Will, Robert/Bob,
  Elizabeth/Liz/Beth, Katherine/Kate ...), upper / lower case, typos
  (transposed or dropped letter), umlaut spellings (Müller/Mueller/Muller),
  Judge.me style "Bill S." reviewer names.
- Emails: case variants, gmail dot variants and +tags, domain typos
  (gmial.com, hotmial.com, qq.con), stray spaces, a second (work) address,
  missing on marketplace records, a shared family address in a few
  households.
- Phones: one number in many formats (+86 138 1234 5678, 13812345678,
  0086-138-1234-5678, (212) 555-0147, +1 212 555 0147, 07123 456789,
  +49 (0)171 1234567), with and without country code; masked marketplace
  phones; WhatsApp handles as bare digits.
- Chat: WeChat senders have only an openid and a nickname (no email or
  phone, genuinely hard); WhatsApp senders a nickname or first name; a few
  messages mention the sender's phone or email in the text.
- Households: 2-4 different people sharing an address, often a landline,
  and rarely an email; they stay different entities in the truth.
- Merchant placeholders: some orders carry the shop's own phone or
  noemail@<shop>.com for different buyers (different entities).
- Same name, different people: the weighted name tables make several
  distinct 王伟 / John Smith in different cities.
- Volume: 1 to 20 records a person (skewed, mean about 3), over one to
  several connections; some people hold two accounts on one shop, some
  check out as guests, a few move house.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import re
import sys
import time
from collections import Counter

# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------

REGION = {
    "taobao-1": "CN",
    "jd-1": "CN",
    "shopify-1": "US",
    "woocommerce-1": "GB",
    "whatsapp-1": "GB",
    "wechat-1": "CN",
    "email-1": "US",
    "judgeme-1": "US",
}
SHOP_DOMAIN = {"shopify-1": "lumenhome.com", "woocommerce-1": "teaandtwine.co.uk", "jd-1": "jdshop.cn"}
# The shop's own phone, typed by staff for phone orders (a placeholder).
SHOP_PHONE = {"shopify-1": "+1 (212) 736-4410", "woocommerce-1": "020 7946 0321", "jd-1": "400-820-1234"}

START = 1640995200  # 2022-01-01T00:00:00Z
END = 1751241600  # 2025-06-30T00:00:00Z
BUCKET_SECONDS = 30 * 86400

# --------------------------------------------------------------------------
# Name tables (weights roughly follow published frequency rankings)
# --------------------------------------------------------------------------

CN_SURNAMES = [
    ("王", "Wang", 71), ("李", "Li", 70), ("张", "Zhang", 64), ("刘", "Liu", 54), ("陈", "Chen", 45),
    ("杨", "Yang", 31), ("黄", "Huang", 22), ("赵", "Zhao", 20), ("吴", "Wu", 20), ("周", "Zhou", 19),
    ("徐", "Xu", 13), ("孙", "Sun", 13), ("马", "Ma", 12), ("朱", "Zhu", 12), ("胡", "Hu", 11),
    ("郭", "Guo", 11), ("何", "He", 10), ("高", "Gao", 10), ("林", "Lin", 10), ("罗", "Luo", 9),
    ("郑", "Zheng", 9), ("梁", "Liang", 8), ("谢", "Xie", 7), ("宋", "Song", 6), ("唐", "Tang", 6),
    ("许", "Xu", 6), ("韩", "Han", 6), ("冯", "Feng", 5), ("邓", "Deng", 5), ("曹", "Cao", 5),
    ("彭", "Peng", 5), ("曾", "Zeng", 5), ("肖", "Xiao", 5), ("田", "Tian", 4), ("董", "Dong", 4),
    ("袁", "Yuan", 4), ("潘", "Pan", 4), ("于", "Yu", 4), ("蒋", "Jiang", 4), ("蔡", "Cai", 4),
    ("余", "Yu", 4), ("杜", "Du", 4), ("叶", "Ye", 4), ("程", "Cheng", 4), ("苏", "Su", 3),
    ("魏", "Wei", 3), ("吕", "Lv", 3), ("丁", "Ding", 3), ("任", "Ren", 3), ("沈", "Shen", 3),
    ("姚", "Yao", 3), ("卢", "Lu", 3), ("姜", "Jiang", 3), ("崔", "Cui", 3), ("钟", "Zhong", 3),
    ("谭", "Tan", 3), ("陆", "Lu", 3), ("汪", "Wang", 3), ("范", "Fan", 3), ("金", "Jin", 3),
    ("石", "Shi", 3), ("廖", "Liao", 3), ("贾", "Jia", 3), ("夏", "Xia", 3), ("韦", "Wei", 3),
    ("付", "Fu", 2), ("方", "Fang", 2), ("白", "Bai", 2), ("邹", "Zou", 2), ("孟", "Meng", 2),
    ("熊", "Xiong", 2), ("秦", "Qin", 2), ("邱", "Qiu", 2), ("江", "Jiang", 2), ("尹", "Yin", 2),
    ("薛", "Xue", 2), ("闫", "Yan", 2), ("段", "Duan", 2), ("雷", "Lei", 2), ("侯", "Hou", 2),
    ("龙", "Long", 2), ("史", "Shi", 2), ("陶", "Tao", 2), ("黎", "Li", 2), ("贺", "He", 2),
    ("顾", "Gu", 2), ("毛", "Mao", 2), ("郝", "Hao", 2), ("龚", "Gong", 2), ("邵", "Shao", 2),
    ("万", "Wan", 2), ("钱", "Qian", 2), ("严", "Yan", 2), ("武", "Wu", 2), ("戴", "Dai", 2),
    ("覃", "Qin", 1), ("莫", "Mo", 1), ("孔", "Kong", 1), ("向", "Xiang", 1), ("汤", "Tang", 1),
    ("欧阳", "Ouyang", 1), ("司马", "Sima", 0.2), ("诸葛", "Zhuge", 0.1),
]

# Single-character given names, weighted: 伟, 娜, 敏, 静 ... are the commonest.
CN_GIVEN_SINGLE = [
    ("伟", "Wei", 30), ("娜", "Na", 16), ("敏", "Min", 14), ("静", "Jing", 14), ("丽", "Li", 12),
    ("强", "Qiang", 12), ("磊", "Lei", 12), ("军", "Jun", 11), ("洋", "Yang", 11), ("勇", "Yong", 10),
    ("艳", "Yan", 10), ("杰", "Jie", 10), ("娟", "Juan", 9), ("涛", "Tao", 9), ("明", "Ming", 8),
    ("超", "Chao", 8), ("霞", "Xia", 7), ("平", "Ping", 7), ("刚", "Gang", 7), ("芳", "Fang", 9),
    ("华", "Hua", 5), ("红", "Hong", 5), ("玲", "Ling", 4), ("斌", "Bin", 4), ("鹏", "Peng", 4),
    ("辉", "Hui", 4), ("健", "Jian", 3), ("欣", "Xin", 3), ("婷", "Ting", 4), ("雪", "Xue", 3),
    ("琳", "Lin", 3), ("晶", "Jing", 3), ("倩", "Qian", 3), ("颖", "Ying", 3), ("浩", "Hao", 3),
    ("宇", "Yu", 3), ("帆", "Fan", 2), ("峰", "Feng", 3), ("波", "Bo", 3), ("亮", "Liang", 2),
    ("飞", "Fei", 2), ("鑫", "Xin", 2), ("博", "Bo", 2), ("凯", "Kai", 2), ("梅", "Mei", 3),
]
# Common two-character given names, then the characters to compose others from.
CN_GIVEN_DOUBLE = [
    ("秀英", "Xiuying", 12), ("桂英", "Guiying", 8), ("建华", "Jianhua", 6), ("建国", "Jianguo", 6),
    ("志强", "Zhiqiang", 6), ("海燕", "Haiyan", 6), ("晓燕", "Xiaoyan", 5), ("丽娟", "Lijuan", 5),
    ("子涵", "Zihan", 5), ("梓涵", "Zihan", 4), ("欣怡", "Xinyi", 5), ("浩然", "Haoran", 4),
    ("宇轩", "Yuxuan", 4), ("一诺", "Yinuo", 3), ("俊杰", "Junjie", 4), ("晓明", "Xiaoming", 4),
    ("文静", "Wenjing", 3), ("佳怡", "Jiayi", 3), ("雨桐", "Yutong", 3), ("思远", "Siyuan", 3),
]
CN_GIVEN_CHARS = [
    ("伟", "wei"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"), ("磊", "lei"),
    ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("英", "ying"), ("霞", "xia"),
    ("平", "ping"), ("刚", "gang"), ("桂", "gui"), ("芳", "fang"), ("娜", "na"), ("华", "hua"),
    ("红", "hong"), ("玉", "yu"), ("兰", "lan"), ("梅", "mei"), ("燕", "yan"), ("云", "yun"),
    ("莉", "li"), ("建", "jian"), ("国", "guo"), ("文", "wen"), ("辉", "hui"), ("力", "li"),
    ("鹏", "peng"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"), ("凯", "kai"), ("健", "jian"),
    ("俊", "jun"), ("帆", "fan"), ("帅", "shuai"), ("旭", "xu"), ("宁", "ning"), ("龙", "long"),
    ("林", "lin"), ("欣", "xin"), ("怡", "yi"), ("婷", "ting"), ("雪", "xue"), ("琳", "lin"),
    ("晶", "jing"), ("倩", "qian"), ("颖", "ying"), ("慧", "hui"), ("佳", "jia"), ("嘉", "jia"),
    ("晨", "chen"), ("阳", "yang"), ("博", "bo"), ("子", "zi"), ("涵", "han"), ("梓", "zi"),
    ("轩", "xuan"), ("雨", "yu"), ("萱", "xuan"), ("思", "si"), ("彤", "tong"), ("泽", "ze"),
    ("豪", "hao"), ("峰", "feng"), ("波", "bo"), ("海", "hai"), ("亮", "liang"), ("志", "zhi"),
    ("新", "xin"), ("春", "chun"), ("晓", "xiao"), ("小", "xiao"), ("东", "dong"), ("丹", "dan"),
    ("金", "jin"), ("利", "li"), ("萍", "ping"), ("琴", "qin"), ("玲", "ling"), ("凤", "feng"),
    ("珍", "zhen"), ("飞", "fei"), ("鑫", "xin"), ("成", "cheng"), ("琪", "qi"), ("瑞", "rui"),
    ("瑶", "yao"), ("璐", "lu"), ("露", "lu"), ("婉", "wan"), ("媛", "yuan"), ("薇", "wei"),
    ("蕾", "lei"), ("洁", "jie"), ("清", "qing"), ("诗", "shi"), ("语", "yu"), ("安", "an"),
    ("乐", "le"), ("航", "hang"), ("然", "ran"), ("一", "yi"), ("天", "tian"), ("家", "jia"),
    ("永", "yong"), ("良", "liang"), ("福", "fu"), ("荣", "rong"), ("贵", "gui"), ("生", "sheng"),
    ("德", "de"), ("喜", "xi"), ("庆", "qing"), ("胜", "sheng"), ("光", "guang"), ("振", "zhen"),
    ("宏", "hong"), ("忠", "zhong"), ("卫", "wei"), ("兵", "bing"), ("岩", "yan"), ("松", "song"),
    ("源", "yuan"), ("睿", "rui"), ("哲", "zhe"), ("奕", "yi"), ("铭", "ming"), ("昊", "hao"),
    ("晗", "han"), ("娇", "jiao"), ("秋", "qiu"), ("冬", "dong"), ("艺", "yi"), ("婧", "jing"),
    ("蓉", "rong"), ("妍", "yan"), ("悦", "yue"), ("菲", "fei"), ("晴", "qing"), ("璇", "xuan"),
    ("莹", "ying"), ("欢", "huan"), ("爽", "shuang"), ("月", "yue"), ("淑", "shu"), ("惠", "hui"),
    ("彬", "bin"), ("毅", "yi"), ("彦", "yan"), ("鸣", "ming"), ("承", "cheng"), ("诺", "nuo"),
]
CN_ENGLISH_NAMES = ["Kevin", "Jason", "Eric", "Tony", "David", "Jack", "Vincent", "Leo", "Cindy",
                    "Grace", "Vivian", "Amy", "Coco", "Lily", "Jenny", "Helen", "Sherry", "Annie"]
CN_NICK_WORDS = ["快乐小猪", "爱吃鱼的猫", "追风少年", "小确幸", "阳光明媚", "淡定哥", "甜甜圈",
                 "一只小可爱", "木子李", "小太阳", "星星点灯", "晴天", "随遇而安", "向日葵", "老王",
                 "吃货一枚", "明天会更好", "静待花开", "宝宝妈", "Sunny", "Momo", "AAA批发"]
CN_CHAT_NICKS = ["小{g}", "阿{g}", "{g}{g}", "{s}姐", "{s}哥", "老{s}", "🌸{g}", "{py}", "A{s}{g}"]

# Western first names with their usual short forms.
WEST_FIRST = [
    ("James", ["Jim", "Jimmy", "Jamie"], 33), ("John", ["Johnny", "Jack"], 32), ("Robert", ["Bob", "Rob", "Bobby"], 31),
    ("Michael", ["Mike", "Mick"], 30), ("William", ["Bill", "Will", "Billy", "Liam"], 27), ("David", ["Dave"], 26),
    ("Richard", ["Rick", "Rich", "Dick"], 15), ("Joseph", ["Joe", "Joey"], 14), ("Thomas", ["Tom", "Tommy"], 14),
    ("Christopher", ["Chris"], 13), ("Daniel", ["Dan", "Danny"], 12), ("Matthew", ["Matt"], 11),
    ("Anthony", ["Tony"], 10), ("Steven", ["Steve"], 9), ("Andrew", ["Andy", "Drew"], 9), ("Kenneth", ["Ken"], 6),
    ("Edward", ["Ed", "Ted", "Eddie"], 6), ("Charles", ["Charlie", "Chuck"], 9), ("Benjamin", ["Ben"], 6),
    ("Samuel", ["Sam"], 5), ("Alexander", ["Alex"], 6), ("Nicholas", ["Nick"], 5), ("Jonathan", ["Jon"], 5),
    ("Timothy", ["Tim"], 5), ("Brian", [], 7), ("Kevin", [], 6), ("Jason", [], 6), ("Mark", [], 8), ("Paul", [], 7),
    ("Mary", [], 25), ("Patricia", ["Pat", "Trish"], 15), ("Jennifer", ["Jen", "Jenny"], 15),
    ("Elizabeth", ["Liz", "Beth", "Lizzie", "Eliza"], 13), ("Linda", [], 12), ("Barbara", ["Barb"], 9),
    ("Susan", ["Sue"], 9), ("Jessica", ["Jess"], 9), ("Sarah", [], 9), ("Karen", [], 8),
    ("Margaret", ["Maggie", "Meg", "Peggy"], 8), ("Katherine", ["Kate", "Kathy", "Katie"], 8),
    ("Rebecca", ["Becky", "Becca"], 5), ("Stephanie", ["Steph"], 5), ("Victoria", ["Vicky", "Tori"], 5),
    ("Deborah", ["Debbie", "Deb"], 5), ("Emily", [], 6), ("Emma", [], 6), ("Olivia", [], 5), ("Sophie", [], 4),
    ("Abigail", ["Abby"], 3), ("Christine", ["Chris", "Chrissy"], 4), ("Laura", [], 4), ("Hannah", [], 4),
    ("Lukas", [], 3), ("Johannes", ["Hans", "Jo"], 3), ("Wolfgang", ["Wolf"], 2), ("Anna", [], 5), ("Lisa", [], 4),
]
WEST_LAST = [
    ("Smith", 50), ("Johnson", 30), ("Williams", 26), ("Brown", 24), ("Jones", 24), ("Miller", 18),
    ("Davis", 16), ("Garcia", 14), ("Wilson", 12), ("Taylor", 14), ("Anderson", 10), ("Thomas", 10),
    ("Moore", 9), ("Martin", 9), ("Jackson", 9), ("Thompson", 9), ("White", 8), ("Harris", 8), ("Clark", 7),
    ("Lewis", 7), ("Walker", 7), ("Hall", 6), ("Young", 6), ("Allen", 6), ("Wright", 6), ("King", 6),
    ("Scott", 5), ("Green", 5), ("Baker", 5), ("Adams", 5), ("Nelson", 5), ("Hill", 5), ("Campbell", 5),
    ("Mitchell", 4), ("Roberts", 4), ("Carter", 4), ("Phillips", 4), ("Evans", 4), ("Turner", 4), ("Parker", 4),
    ("Collins", 4), ("Edwards", 4), ("Stewart", 4), ("Morris", 4), ("Murphy", 4), ("Cook", 4), ("Rogers", 3),
    ("Morgan", 3), ("Cooper", 3), ("Reed", 3), ("Bailey", 3), ("Bell", 3), ("Kelly", 3), ("Ward", 3),
    ("Wood", 3), ("Watson", 3), ("Hughes", 3), ("Patel", 4), ("Khan", 3), ("O'Brien", 2), ("MacDonald", 2),
]
DE_LAST = [("Müller", 20), ("Schmidt", 16), ("Schneider", 10), ("Fischer", 9), ("Weber", 8), ("Meyer", 8),
           ("Wagner", 7), ("Becker", 6), ("Schulz", 6), ("Hoffmann", 6), ("Schäfer", 5), ("Koch", 5),
           ("Bauer", 5), ("Richter", 5), ("Klein", 5), ("Wolf", 4), ("Schröder", 4), ("Neumann", 4),
           ("Schwarz", 4), ("Zimmermann", 4), ("Krüger", 3), ("Braun", 3), ("Hofmann", 3), ("Weiß", 3)]
UMLAUT_ASCII = {"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss"}
UMLAUT_BARE = {"ü": "u", "ö": "o", "ä": "a", "ß": "ss"}

# --------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------

# province, city, postcode prefix, phone area code, [(district, pinyin)]
CN_CITIES = [
    ("北京", "北京", "1000", "10", [("朝阳区", "Chaoyang"), ("海淀区", "Haidian"), ("东城区", "Dongcheng")], "Beijing"),
    ("上海", "上海", "2000", "21", [("浦东新区", "Pudong"), ("徐汇区", "Xuhui"), ("静安区", "Jing'an")], "Shanghai"),
    ("广东省", "广州", "5100", "20", [("天河区", "Tianhe"), ("越秀区", "Yuexiu"), ("海珠区", "Haizhu")], "Guangzhou"),
    ("广东省", "深圳", "5180", "755", [("南山区", "Nanshan"), ("福田区", "Futian"), ("宝安区", "Bao'an")], "Shenzhen"),
    ("浙江省", "杭州", "3100", "571", [("西湖区", "Xihu"), ("余杭区", "Yuhang"), ("滨江区", "Binjiang")], "Hangzhou"),
    ("江苏省", "南京", "2100", "25", [("鼓楼区", "Gulou"), ("玄武区", "Xuanwu")], "Nanjing"),
    ("江苏省", "苏州", "2150", "512", [("姑苏区", "Gusu"), ("吴中区", "Wuzhong")], "Suzhou"),
    ("四川省", "成都", "6100", "28", [("锦江区", "Jinjiang"), ("武侯区", "Wuhou"), ("高新区", "Gaoxin")], "Chengdu"),
    ("湖北省", "武汉", "4300", "27", [("武昌区", "Wuchang"), ("洪山区", "Hongshan")], "Wuhan"),
    ("陕西省", "西安", "7100", "29", [("雁塔区", "Yanta"), ("碑林区", "Beilin")], "Xi'an"),
    ("重庆", "重庆", "4000", "23", [("渝中区", "Yuzhong"), ("江北区", "Jiangbei")], "Chongqing"),
    ("天津", "天津", "3000", "22", [("和平区", "Heping"), ("南开区", "Nankai")], "Tianjin"),
    ("山东省", "青岛", "2660", "532", [("市南区", "Shinan"), ("崂山区", "Laoshan")], "Qingdao"),
    ("湖南省", "长沙", "4100", "731", [("岳麓区", "Yuelu"), ("芙蓉区", "Furong")], "Changsha"),
    ("福建省", "厦门", "3610", "592", [("思明区", "Siming"), ("湖里区", "Huli")], "Xiamen"),
]
CN_PROVINCE_PY = {"北京": "Beijing", "上海": "Shanghai", "广东省": "Guangdong", "浙江省": "Zhejiang",
                  "江苏省": "Jiangsu", "四川省": "Sichuan", "湖北省": "Hubei", "陕西省": "Shaanxi",
                  "重庆": "Chongqing", "天津": "Tianjin", "山东省": "Shandong", "湖南省": "Hunan",
                  "福建省": "Fujian"}
CN_ROADS = [("人民路", "Renmin"), ("中山路", "Zhongshan"), ("解放路", "Jiefang"), ("建设路", "Jianshe"),
            ("长江路", "Changjiang"), ("和平路", "Heping"), ("文化路", "Wenhua"), ("学府路", "Xuefu"),
            ("科技路", "Keji"), ("新华路", "Xinhua"), ("东风路", "Dongfeng"), ("胜利路", "Shengli")]
CN_COMPOUNDS = [("阳光花园", "Yangguang Garden"), ("幸福家园", "Xingfu Jiayuan"), ("锦绣华庭", "Jinxiu Huating"),
                ("万科城", "Vanke City"), ("碧桂园", "Country Garden"), ("金地名苑", "Jindi Mingyuan"),
                ("绿地小区", "Lvdi Estate"), ("翠湖苑", "Cuihu Court")]

US_CITIES = [("New York", "NY", "New York", "100", ["212", "646", "917"]), ("Brooklyn", "NY", "New York", "112", ["718", "347"]),
             ("Los Angeles", "CA", "California", "900", ["213", "310", "323"]), ("San Francisco", "CA", "California", "941", ["415", "628"]),
             ("Chicago", "IL", "Illinois", "606", ["312", "773"]), ("Houston", "TX", "Texas", "770", ["713", "281"]),
             ("Austin", "TX", "Texas", "787", ["512", "737"]), ("Seattle", "WA", "Washington", "981", ["206", "425"]),
             ("Boston", "MA", "Massachusetts", "021", ["617", "857"]), ("Denver", "CO", "Colorado", "802", ["303", "720"]),
             ("Atlanta", "GA", "Georgia", "303", ["404", "678"]), ("Miami", "FL", "Florida", "331", ["305", "786"])]
US_STREETS = ["Main", "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Sunset", "Lincoln"]
US_SUFFIX = [("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Drive", "Dr"), ("Lane", "Ln"), ("Boulevard", "Blvd")]
GB_CITIES = [("London", "SW", "20"), ("London", "N", "20"), ("Manchester", "M", "161"), ("Birmingham", "B", "121"),
             ("Leeds", "LS", "113"), ("Glasgow", "G", "141"), ("Bristol", "BS", "117"), ("Edinburgh", "EH", "131")]
GB_STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Manor Road",
              "Park Road", "Queens Road", "Mill Lane", "King Street"]
DE_CITIES = [("Berlin", "10", "30"), ("Hamburg", "20", "40"), ("München", "80", "89"), ("Köln", "50", "221"),
             ("Frankfurt am Main", "60", "69"), ("Stuttgart", "70", "711"), ("Leipzig", "04", "341")]
DE_STREETS = ["Hauptstraße", "Schulstraße", "Gartenstraße", "Bahnhofstraße", "Dorfstraße", "Bergstraße",
              "Lindenstraße", "Kirchstraße", "Goethestraße", "Schillerstraße"]

WEST_EMAIL_DOMAINS = [("gmail.com", 45), ("yahoo.com", 10), ("hotmail.com", 10), ("outlook.com", 10),
                      ("icloud.com", 8), ("aol.com", 3), ("protonmail.com", 2)]
GB_EMAIL_DOMAINS = [("gmail.com", 40), ("hotmail.co.uk", 15), ("yahoo.co.uk", 10), ("outlook.com", 10),
                    ("btinternet.com", 8), ("icloud.com", 7)]
DE_EMAIL_DOMAINS = [("gmail.com", 30), ("web.de", 20), ("gmx.de", 20), ("t-online.de", 10), ("outlook.de", 5)]
CN_EMAIL_DOMAINS = [("qq.com", 50), ("163.com", 20), ("126.com", 8), ("foxmail.com", 6), ("sina.com", 4),
                    ("gmail.com", 6), ("outlook.com", 4)]
WORK_DOMAINS = ["acme-corp.com", "globex.com", "initech.io", "huawei.com", "alibaba-inc.com", "siemens.com"]
DOMAIN_TYPOS = {"gmail.com": ["gmial.com", "gmail.con", "gmai.com", "gmail.co"], "hotmail.com": ["hotmial.com", "hotmail.con"],
                "qq.com": ["qq.con", "qq.co", "qq.cm"], "163.com": ["163.con", "163.cm"], "yahoo.com": ["yaho.com", "yahoo.con"],
                "outlook.com": ["outlok.com", "outlook.co"], "icloud.com": ["iclod.com"], "web.de": ["web.dd"]}

CN_PRODUCTS = [("手机壳", "29.90"), ("保温杯", "89.00"), ("蓝牙耳机", "199.00"), ("连衣裙", "159.00"),
               ("运动鞋", "329.00"), ("零食大礼包", "59.90"), ("洗面奶", "79.00"), ("数据线", "19.90"),
               ("床上四件套", "269.00"), ("茶叶礼盒", "198.00")]
WEST_PRODUCTS = [("Ceramic Mug", "18.00"), ("Linen Tea Towel", "12.50"), ("Scented Candle", "24.00"),
                 ("Wool Throw", "89.00"), ("Loose Leaf Tea Tin", "15.00"), ("Cotton Tote", "20.00"),
                 ("Oak Serving Board", "45.00"), ("Glass Teapot", "34.00"), ("Gift Card", "50.00")]
CN_TEXTS = ["你好，我的快递什么时候到？", "请问有优惠券吗", "订单还没发货，麻烦看一下", "这个有现货吗？",
            "收到了，质量不错", "可以开发票吗", "尺码偏大还是偏小？", "我要退货", "地址写错了能改吗", "在吗"]
WEST_TEXTS = ["Hi, where is my order?", "Do you ship to Canada?", "Can I change my delivery address?",
              "The mug arrived broken :(", "Is the throw machine washable?", "Thanks, got it!",
              "Hello, any discount codes?", "I'd like to return an item", "When will this be back in stock?"]
REVIEW_TEXTS = ["Lovely quality, would buy again.", "Arrived quickly, well packed.", "Not as pictured.",
                "Great gift, my mum loved it.", "Good value.", "Smaller than expected.", "质量很好，推荐！"]
STATUSES = [("completed", 50), ("shipped", 15), ("paid", 12), ("pending", 6), ("refunded", 5), ("cancelled", 6)]


# --------------------------------------------------------------------------
# Sampling helpers
# --------------------------------------------------------------------------

class Picker:
    """Weighted choice over a fixed table by bisecting cumulative weights."""

    def __init__(self, items, weights):
        self.items = list(items)
        self.cum = list(itertools.accumulate(weights))
        self.total = self.cum[-1]

    def __call__(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]


def picker(table, weight_index=-1):
    return Picker(table, [row[weight_index] for row in table])


PICK_SURNAME = picker(CN_SURNAMES)
PICK_GIVEN1 = picker(CN_GIVEN_SINGLE)
PICK_GIVEN2 = picker(CN_GIVEN_DOUBLE)
PICK_WEST_FIRST = picker(WEST_FIRST)
PICK_WEST_LAST = picker(WEST_LAST)
PICK_DE_LAST = picker(DE_LAST)
PICK_STATUS = picker(STATUSES)
DOMAINS = {k: Picker([d for d, _ in t], [w for _, w in t]) for k, t in
           {"US": WEST_EMAIL_DOMAINS, "GB": GB_EMAIL_DOMAINS, "DE": DE_EMAIL_DOMAINS, "CN": CN_EMAIL_DOMAINS}.items()}
# Records a person leaves: 1..20, heavy head (mean about 3).
PICK_COUNT = Picker(range(1, 21), [k ** -1.75 for k in range(1, 21)])


def chance(rng, p):
    return rng.random() < p


def digits(rng, n):
    return f"{rng.getrandbits(4 * n + 8) % 10 ** n:0{n}d}"


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def token(rng, n, alphabet=ALNUM):
    """n random characters from a 64-letter (or shorter) alphabet, in one draw."""
    bits, out = rng.getrandbits(6 * n), []
    for _ in range(n):
        out.append(alphabet[(bits & 63) % len(alphabet)])
        bits >>= 6
    return "".join(out)


def typo(rng, word):
    """One transposed or dropped letter, as people type in a hurry."""
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    if chance(rng, 0.5):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def recase(rng, name):
    r = rng.random()
    if r < 0.5:
        return name.upper()
    return name.lower()


# --------------------------------------------------------------------------
# Phones: a person's number as a national significant number, written many ways
# --------------------------------------------------------------------------

def cn_mobile(rng):
    prefix = rng.choice(["138", "139", "135", "136", "137", "150", "151", "158", "159", "186", "187", "188",
                         "189", "177", "199", "130", "131", "132", "155", "156", "133", "153", "180", "181"])
    return prefix + digits(rng, 8)


def format_phone(rng, country, nsn, landline_area=""):
    """The same number as shops and people actually write it."""
    r = rng.random()
    if country == "CN":
        if landline_area:  # nsn is area code + local number
            local = nsn[len(landline_area):]
            forms = [f"0{landline_area}-{local}", f"+86 {landline_area} {local[:4]} {local[4:]}",
                     f"(0{landline_area}){local}", f"0{landline_area} {local}", f"+86-{landline_area}-{local}"]
            return forms[int(r * len(forms))]
        forms = [nsn, nsn, f"+86 {nsn[:3]} {nsn[3:7]} {nsn[7:]}", f"0086-{nsn[:3]}-{nsn[3:7]}-{nsn[7:]}",
                 f"+86{nsn}", f"{nsn[:3]}-{nsn[3:7]}-{nsn[7:]}", f"86 {nsn}", f"{nsn[:3]} {nsn[3:7]} {nsn[7:]}"]
        return forms[int(r * len(forms))]
    if country == "US":
        a, b, c = nsn[:3], nsn[3:6], nsn[6:]
        forms = [f"({a}) {b}-{c}", f"+1 {a} {b} {c}", f"{a}-{b}-{c}", nsn, f"+1{nsn}", f"1-{a}-{b}-{c}",
                 f"{a}.{b}.{c}", f"+1 ({a}) {b}-{c}"]
        return forms[int(r * len(forms))]
    if country == "GB":
        if nsn.startswith("7"):
            forms = [f"0{nsn[:4]} {nsn[4:]}", f"+44 {nsn[:4]} {nsn[4:]}", f"+44{nsn}", f"0{nsn}",
                     f"+44 (0) {nsn[:4]} {nsn[4:]}", f"0044 {nsn[:4]} {nsn[4:7]} {nsn[7:]}"]
        else:
            forms = [f"0{nsn[:2]} {nsn[2:6]} {nsn[6:]}", f"+44 {nsn[:2]} {nsn[2:6]} {nsn[6:]}", f"0{nsn}"]
        return forms[int(r * len(forms))]
    # DE
    forms = [f"0{nsn[:3]} {nsn[3:]}", f"+49 {nsn[:3]} {nsn[3:]}", f"0049 {nsn[:3]} {nsn[3:]}",
             f"+49 (0){nsn[:3]} {nsn[3:]}", f"0{nsn[:3]}/{nsn[3:]}", f"+49{nsn}"]
    return forms[int(r * len(forms))]


def e164_digits(country, nsn):
    return {"CN": "86", "US": "1", "GB": "44", "DE": "49"}[country] + nsn


def mask_cn(nsn):
    return f"{nsn[:3]}****{nsn[7:]}"


# --------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------

class Person:
    __slots__ = ("eid", "country", "han", "han_family", "han_given", "py_family", "py_given",
                 "english", "first", "nicks", "last", "emails", "mobile", "landline", "landline_area",
                 "addresses", "move_at", "birth", "household", "chat_nick", "taobao_nick",
                 "openid", "start", "mentions_ok")


def cn_given(rng):
    r = rng.random()
    if r < 0.32:
        han, py, _ = PICK_GIVEN1(rng)
        return han, [py]
    if r < 0.50:
        han, py, _ = PICK_GIVEN2(rng)
        return han, [py]
    a, b = rng.choice(CN_GIVEN_CHARS), rng.choice(CN_GIVEN_CHARS)
    return a[0] + b[0], [a[1].capitalize(), b[1]]


def new_person(rng, eid, country, taken, family=None):
    p = Person()
    p.eid, p.country, p.household = eid, country, None
    p.english, p.han = None, None
    if country == "CN":
        fam = family or PICK_SURNAME(rng)[:2]
        p.han_family, p.py_family = fam
        p.han_given, p.py_given = cn_given(rng)
        p.han = p.han_family + p.han_given
        if chance(rng, 0.12):
            p.english = rng.choice(CN_ENGLISH_NAMES)
        p.first, p.nicks = "".join(p.py_given), []
        p.last = p.py_family
    else:
        first, nicks, _ = PICK_WEST_FIRST(rng)
        p.first, p.nicks = first, nicks
        if family:
            p.last = family
        elif country == "DE" and chance(rng, 0.7):
            p.last = PICK_DE_LAST(rng)[0]
        else:
            p.last = PICK_WEST_LAST(rng)[0]
    p.birth = f"{rng.randint(1955, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    p.emails = [unique(rng, taken, e) for e in new_emails(rng, p)]
    p.mobile = new_mobile(rng, country)
    while "tel:" + p.mobile in taken:
        p.mobile = new_mobile(rng, country)
    taken.add("tel:" + p.mobile)
    p.landline, p.landline_area = None, ""
    p.addresses = [new_address(rng, country)]
    p.move_at = None
    p.start = rng.randint(START, END - 60 * 86400)
    if chance(rng, 0.05):
        p.addresses.append(new_address(rng, country))
        p.move_at = rng.randint(p.start, END)
    p.chat_nick = chat_nick(rng, p)
    p.taobao_nick = taobao_nick(rng, p)
    p.openid = "o" + token(rng, 27)
    return p


def unique(rng, taken, email):
    """Mail providers hand an address to one person only, so two people
    never share one by accident (gmail ignores dots in the local part)."""
    local, domain = email
    while True:
        key = f"{local.replace('.', '') if domain == 'gmail.com' else local}@{domain}"
        if key not in taken:
            taken.add(key)
            return local, domain
        local = f"{email[0]}{rng.randint(1, 999)}"


def new_emails(rng, p):
    """(local, domain) pairs: a personal address, sometimes a work one."""
    year = p.birth[2:4]
    if p.country == "CN":
        domain = DOMAINS["CN"](rng)
        if domain in ("qq.com", "foxmail.com") and chance(rng, 0.7):
            local = str(rng.randint(10000, 3999999999))  # a QQ number
        else:
            fam, giv = p.py_family.lower(), "".join(p.py_given).lower()
            local = rng.choice([f"{fam}{giv}", f"{giv}{fam}", f"{fam}{giv}{year}", f"{fam}_{giv}",
                                f"{giv}.{fam}", f"{fam}{giv}{rng.randint(1, 999)}"]).replace("'", "")
    else:
        domain = DOMAINS[p.country](rng)
        f, l = p.first.lower(), ascii_name(p.last).lower().replace("'", "")
        local = rng.choice([f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}.{l}{year}", f"{f}_{l}",
                            f"{f}{rng.randint(1, 99)}", f"{l}.{f}", f"{f[0]}.{l}{rng.randint(1, 9)}"])
    emails = [(local, domain)]
    if chance(rng, 0.12):
        emails.append(((p.first[0] + p.last).lower().replace("'", "").encode("ascii", "ignore").decode(),
                       rng.choice(WORK_DOMAINS)))
    return emails


def ascii_name(name):
    return "".join(UMLAUT_ASCII.get(c, c) for c in name)


def new_mobile(rng, country):
    if country == "CN":
        return cn_mobile(rng)
    if country == "US":
        return rng.choice(rng.choice(US_CITIES)[4]) + str(rng.randint(2, 9)) + digits(rng, 6)
    if country == "GB":
        return "7" + str(rng.randint(1, 3)) + digits(rng, 8)
    prefix = rng.choice(["51", "52", "60", "62", "70", "71", "72", "73", "76", "77"])
    return "1" + prefix + digits(rng, 8 if prefix[0] == "5" else 7)  # 015x numbers are a digit longer


def new_address(rng, country):
    """A structured address; per-record rendering adds the spelling noise."""
    if country == "CN":
        city = rng.choice(CN_CITIES)
        return ("CN", city, rng.choice(city[4]), rng.choice(CN_ROADS), rng.randint(1, 999),
                rng.choice(CN_COMPOUNDS), rng.randint(1, 30), rng.randint(1, 6),
                rng.randint(1, 32) * 100 + rng.randint(1, 4), city[2] + digits(rng, 2))
    if country == "US":
        city = rng.choice(US_CITIES)
        return ("US", city, rng.randint(1, 9999), rng.choice(US_STREETS), rng.choice(US_SUFFIX),
                rng.choice([None, None, f"{rng.randint(1, 20)}{rng.choice('ABCD')}"]), city[3] + digits(rng, 2))
    if country == "GB":
        city = rng.choice(GB_CITIES)
        pc = f"{city[1]}{rng.randint(1, 20)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        return ("GB", city, rng.randint(1, 200), rng.choice(GB_STREETS), rng.choice([None, None, f"Flat {rng.randint(1, 12)}"]), pc)
    city = rng.choice(DE_CITIES)
    return ("DE", city, rng.randint(1, 120), rng.choice(DE_STREETS), city[1] + digits(rng, 3))


def render_address(rng, a, latin=False):
    """Canonical address fields, spelled the way this record's source spells them."""
    country = a[0]
    if country == "CN":
        _, city, (dist, dist_py), (road, road_py), num, (comp, comp_py), bld, unit, room, pc = a
        province, city_name, _, _, _, city_py = city
        if latin:
            return {"line1": f"Room {room}, Unit {unit}, Bldg {bld}, {comp_py}",
                    "line2": f"No.{num} {road_py} Rd, {dist_py} District",
                    "city": city_py, "region": CN_PROVINCE_PY[province], "postal_code": pc, "country": "CN"}
        region = province if chance(rng, 0.7) else (province + ("市" if not province.endswith("省") else ""))
        line = f"{road}{num}号{comp}{bld}栋{unit}单元{room}"
        if chance(rng, 0.5):
            line1, line2 = dist + line, None
        else:
            line1, line2 = line, dist
        out = {"line1": line1, "line2": line2, "city": city_name + ("市" if chance(rng, 0.5) else ""),
               "region": region, "postal_code": pc if chance(rng, 0.6) else None, "country": "CN"}
        return out
    if country == "US":
        _, city, num, street, (suffix, abbr), apt, zip_ = a
        line1 = f"{num} {street} {abbr if chance(rng, 0.6) else suffix}"
        line2 = None
        if apt:
            line2 = rng.choice([f"Apt {apt}", f"#{apt}", f"Apt. {apt}", f"Unit {apt}"])
            if chance(rng, 0.3):
                line1, line2 = f"{line1} {line2}", None
        if chance(rng, 0.05):
            line1 = line1.upper()
        return {"line1": line1, "line2": line2, "city": city[0], "region": city[1] if chance(rng, 0.8) else city[2],
                "postal_code": zip_, "country": "US" if chance(rng, 0.9) else "us"}
    if country == "GB":
        _, city, num, street, flat, pc = a
        return {"line1": f"{num} {street}", "line2": flat, "city": city[0], "region": None,
                "postal_code": pc if chance(rng, 0.8) else pc.replace(" ", ""), "country": "GB"}
    _, city, num, street, plz = a
    name = street if chance(rng, 0.7) else street.replace("straße", "str.")
    return {"line1": f"{name} {num}", "line2": None, "city": city[0], "region": None, "postal_code": plz, "country": "DE"}


def address_at(p, t):
    return p.addresses[1] if p.move_at and t >= p.move_at else p.addresses[0]


def chat_nick(rng, p):
    if p.country == "CN":
        if chance(rng, 0.1):
            return p.han
        if chance(rng, 0.15):
            return rng.choice(CN_NICK_WORDS)
        form = rng.choice(CN_CHAT_NICKS)
        g = p.han_given[-1]
        return form.format(g=g, s=p.han_family, py=p.english or p.py_given[0])
    short = rng.choice(p.nicks) if p.nicks and chance(rng, 0.5) else p.first
    return rng.choice([short, short, f"{short} {p.last[0]}", f"{short} 😊", short.lower(), f"{short}{p.last[0]}"])


def taobao_nick(rng, p):
    if p.country != "CN":
        return f"tb_{digits(rng, 8)}"
    r = rng.random()
    if r < 0.35:
        return f"tb_{digits(rng, rng.choice([6, 8, 10]))}"
    if r < 0.65:
        return f"{p.py_family.lower()}{''.join(p.py_given).lower()}{rng.choice(['', p.birth[:4], p.birth[2:4], '88', '666'])}"
    if r < 0.85:
        return rng.choice(CN_NICK_WORDS) + rng.choice(["", "", str(rng.randint(1, 99))])
    return p.han + str(rng.randint(1, 9999))


# --------------------------------------------------------------------------
# Per-record renderings of a person
# --------------------------------------------------------------------------

def latin_full_name(rng, p):
    """The name on a western shop, in email or a review."""
    if p.country == "CN":
        given = "".join(p.py_given)
        if len(p.py_given) == 2:
            given = rng.choice([given, given, f"{p.py_given[0]}-{p.py_given[1]}",
                                f"{p.py_given[0]} {p.py_given[1].capitalize()}", p.py_given[0] + p.py_given[1].capitalize()])
        if p.english and chance(rng, 0.6):
            given = p.english
        r = rng.random()
        if r < 0.45:
            name = f"{given} {p.py_family}"
        elif r < 0.7:
            name = f"{p.py_family} {given}"
        elif r < 0.85:
            name = f"{p.py_family.upper()} {given}"
        else:
            name = f"{given.lower()} {p.py_family.lower()}"
        return name
    first = p.first
    if p.nicks and chance(rng, 0.3):
        first = rng.choice(p.nicks)
    last = p.last
    if any(c in last for c in "üöäß"):
        r = rng.random()
        if r < 0.25:
            last = ascii_name(last)
        elif r < 0.4:
            last = "".join(UMLAUT_BARE.get(c, c) for c in last)
    if chance(rng, 0.04):
        if chance(rng, 0.5):
            first = typo(rng, first)
        else:
            last = typo(rng, last)
    name = f"{first} {last}"
    if chance(rng, 0.07):
        name = recase(rng, name)
    return name


def split_latin(name):
    first, _, last = name.partition(" ")
    return first, last


def email_variant(rng, local, domain, stable=False):
    """One spelling of an address. `stable` spellings are what a person
    registered with (case, dots, tags, typos); others add transient noise."""
    if domain == "gmail.com" and chance(rng, 0.12):
        local = local.replace(".", "") if "." in local else (local[:len(local) // 2] + "." + local[len(local) // 2:])
    if domain in ("gmail.com", "outlook.com", "icloud.com") and chance(rng, 0.05):
        local = f"{local}+{rng.choice(['shop', 'promo', 'orders', 'news'])}"
    if chance(rng, 0.025):
        domain = rng.choice(DOMAIN_TYPOS.get(domain, [domain]))
    r = rng.random()
    if r < 0.06:
        local = local.capitalize() if "." not in local else ".".join(s.capitalize() for s in local.split("."))
        domain = domain.capitalize()
    elif r < 0.09:
        local, domain = local.upper(), domain.upper()
    email = f"{local}@{domain}"
    if not stable and chance(rng, 0.01):
        email = f" {email} "
    return email


def mask_email(local, domain):
    return f"{local[:2]}***@{domain}"


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------

class Ids:
    """Per-connection unique ids: counters, spread so they look like real ids."""

    def __init__(self):
        self.n = Counter()

    def next(self, kind):
        self.n[kind] += 1
        return self.n[kind]


def rfc3339(t, cn):
    if cn:
        return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", time.gmtime(t + 8 * 3600))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def line_items(rng, cn):
    items, total = [], 0
    catalogue = CN_PRODUCTS if cn else WEST_PRODUCTS
    for title, price in rng.sample(catalogue, 1 if chance(rng, 0.6) else rng.randint(2, 4)):
        qty = 1 if chance(rng, 0.8) else rng.randint(2, 3)
        items.append({"sku": f"SKU-{abs(hash_title(title)) % 100000:05d}", "title": title, "quantity": qty, "price": price})
        total += round(float(price) * 100) * qty
    return items, total


def hash_title(title):
    """A stable (process-independent) number for a product title."""
    h = 0
    for ch in title:
        h = (h * 131 + ord(ch)) % 1000003
    return h


def money(cents):
    return f"{cents // 100}.{cents % 100:02d}"


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.ids = Ids()
        self.accounts = {}  # (eid, connection) -> [(customer_id, email, phone)]
        self.placeholder_orders = 0
        self.taken = set()  # emails and mobiles already given to someone

    # Each function returns (time, record) pairs for one person on one connection.

    def shop_orders(self, p, conn, n, t0):
        rng = self.rng
        cn_shop = conn in ("taobao-1", "jd-1")
        out = []
        t = t0
        account = self.account(p, conn, t)
        if conn in ("shopify-1", "woocommerce-1") and account and chance(rng, 0.8):
            out.append((t, self.customer_record(p, conn, account, t)))
            n -= 1
        for _ in range(n):
            t += rng.randint(3600, 120 * 86400)
            if t >= END:
                t = END - rng.randint(1, 86400)
            if conn in ("shopify-1", "woocommerce-1") and chance(rng, 0.04):
                account = self.account(p, conn, t, second=True) or account
            out.append((t, self.order_record(p, conn, account, t, cn_shop)))
        return out

    def account(self, p, conn, t, second=False):
        """The person's account on a shop: customer id plus the email and
        phone spellings they registered with (a second account on request)."""
        rng = self.rng
        key = (p.eid, conn)
        accounts = self.accounts.setdefault(key, [])
        if accounts and not second:
            return accounts[0]
        if conn in ("shopify-1", "woocommerce-1") and not second and chance(rng, 0.12):
            accounts.append(None)  # guest checkouts only
            return None
        n = self.ids.next(conn + ":customer")
        if conn == "taobao-1":
            cid = "AAE" + token(rng, 21, ALNUM[:62])
        elif conn == "jd-1":
            cid = f"jd_{p.py_family.lower() if p.country == 'CN' else 'u'}{n * 7 + 1000}"
        elif conn == "shopify-1":
            cid = str(7000000000000 + n * 7919)
        else:
            cid = str(n + 100)
        local, domain = p.emails[1] if second and len(p.emails) > 1 else p.emails[0]
        email = email_variant(rng, local, domain, stable=True)
        if second and len(p.emails) == 1:
            email = email_variant(rng, local, rng.choice(DOMAIN_TYPOS.get(domain, ["gmail.com"])), stable=True)
        phone = self.phone_spelling(p, conn) if chance(rng, 0.75) else None
        acc = (cid, email, phone)
        accounts.append(acc)
        return acc

    def phone_spelling(self, p, conn):
        rng = self.rng
        if p.landline and chance(rng, 0.3):
            return format_phone(rng, p.country, p.landline, p.landline_area)
        return format_phone(rng, p.country, p.mobile)

    def customer_record(self, p, conn, account, t):
        rng = self.rng
        cid, email, phone = account
        r = {"kind": "customer", "external_id": cid, "created_at": rfc3339(t, False),
             "updated_at": rfc3339(t + rng.randint(0, 90 * 86400), False)}
        name = latin_full_name(rng, p)
        if chance(rng, 0.7):
            first, last = split_latin(name)
            if p.country == "CN" and chance(rng, 0.5):
                first, last = last, first  # family name typed into "first name"
            r["first_name"], r["last_name"] = first, last
        else:
            r["name"] = name
        r["emails"] = [email]
        if len(p.emails) > 1 and chance(rng, 0.3):
            r["emails"].append(email_variant(rng, *p.emails[1]))
        if phone:
            r["phones"] = [phone]
        r["address"] = render_address(rng, address_at(p, t), latin=True)
        if chance(rng, 0.4):
            r["birth_date"] = p.birth
        return r

    def order_record(self, p, conn, account, t, cn_shop):
        rng = self.rng
        n = self.ids.next(conn + ":order")
        r = {"kind": "order"}
        status = PICK_STATUS(rng)[0]
        if conn == "taobao-1":
            r["external_id"] = str(3000000000000000000 + n * 104729)
        elif conn == "jd-1":
            r["external_id"] = str(280000000000 + n * 613)
        elif conn == "shopify-1":
            r["external_id"] = str(5900000000000 + n * 7907)
            r["number"] = f"#{1000 + n}"
            if status == "cancelled" and chance(rng, 0.5):
                status = "canceled"
        else:
            r["external_id"] = f"wc-{10000 + n}"
        r["created_at"] = rfc3339(t, cn_shop)
        r["updated_at"] = rfc3339(t + rng.randint(60, 20 * 86400), cn_shop)
        if account:
            r["customer_external_id"] = account[0]
        r["status"] = status
        items, cents = line_items(rng, cn_shop)
        if cn_shop:
            r["currency"] = "CNY"
        elif conn == "shopify-1":
            r["currency"] = {"US": "USD", "GB": "GBP", "DE": "EUR", "CN": "USD"}[p.country]
        else:
            r["currency"] = "EUR" if p.country == "DE" else "GBP"
        if not cn_shop and chance(rng, 0.5):
            cents += 495
        r["total"] = money(cents)
        r["line_items"] = items
        addr = address_at(p, t)
        if conn == "taobao-1":
            r["name"] = p.taobao_nick if chance(rng, 0.7) or p.country != "CN" else p.han
            if chance(rng, 0.85):
                r["phone"] = mask_cn(p.mobile) if p.country == "CN" else None
            if chance(rng, 0.15):
                r["email"] = mask_email(*p.emails[0])
            r["shipping_address"] = render_address(rng, addr)
        elif conn == "jd-1":
            r["name"] = p.han if p.country == "CN" else latin_full_name(rng, p)
            roll = rng.random()
            if roll < 0.5:
                r["phone"] = mask_cn(p.mobile)
            elif roll < 0.8:
                r["phone"] = self.phone_spelling(p, conn)
            if chance(rng, 0.05):
                r["email"] = email_variant(rng, *p.emails[0])
            r["shipping_address"] = render_address(rng, addr)
        else:
            r["name"] = latin_full_name(rng, p)
            if account and chance(rng, 0.9):
                r["email"] = account[1]
            else:
                r["email"] = email_variant(rng, *p.emails[0])
            phone = account[2] if account else None
            if phone is None and chance(rng, 0.5):
                phone = self.phone_spelling(p, conn)
            if phone:
                r["phone"] = phone
            r["shipping_address"] = render_address(rng, addr, latin=True)
        if conn in SHOP_PHONE and chance(rng, 0.006):
            # Staff took the order by phone: the shop's own number or a dummy email.
            self.placeholder_orders += 1
            if chance(rng, 0.5) or conn == "jd-1":
                r["phone"] = SHOP_PHONE[conn]
            if conn != "jd-1":
                r["email"] = f"noemail@{SHOP_DOMAIN[conn]}"
        return r

    def messages(self, p, conn, n, t0):
        rng = self.rng
        out, t = [], t0
        cn = conn == "wechat-1"
        if conn == "whatsapp-1":
            digits_ = e164_digits(p.country, p.mobile)
            conv = f"wa:{digits_}"
            sender = {"handle": digits_, "name": p.chat_nick if chance(rng, 0.7) else
                      (p.first if p.country != "CN" else (p.english or p.py_given[0]))}
            if chance(rng, 0.8):
                sender["phone"] = "+" + digits_
        elif conn == "wechat-1":
            conv = p.openid
            sender = {"handle": p.openid, "name": p.chat_nick}
        else:
            local, domain = p.emails[-1] if chance(rng, 0.2) else p.emails[0]
            email = email_variant(rng, local, domain, stable=True)
            conv = f"thread-{self.ids.next('email:thread'):07d}"
            display = latin_full_name(rng, p) if p.country != "CN" or chance(rng, 0.7) else p.han
            sender = {"handle": email.strip().lower(), "name": display, "email": email}
        for i in range(n):
            if i:
                t += rng.randint(60, 30 * 86400 if chance(rng, 0.3) else 3600)
            t = min(t, END - 1)
            m = self.ids.next(conn + ":message")
            text = rng.choice(CN_TEXTS if cn or (p.country == "CN" and conn != "email-1") else WEST_TEXTS)
            if chance(rng, 0.03):
                text += f" {format_phone(rng, p.country, p.mobile)}" if conn != "email-1" else f" {p.emails[0][0]}@{p.emails[0][1]}"
            r = {"kind": "message", "external_id": f"{conn.split('-')[0]}-m{m}", "conversation_id": conv,
                 "channel": conn.split("-")[0], "direction": "inbound", "sender": sender, "text": text,
                 "sent_at": rfc3339(t, cn)}
            if conn == "email-1":
                r["subject"] = rng.choice(["订单问题", "咨询"] if p.country == "CN" and chance(rng, 0.5)
                                          else ["Order question", "Re: Your order", "Return", "Hello"])
            out.append((t, r))
        return out

    def reviews(self, p, conn, n, t0):
        rng = self.rng
        out, t = [], t0
        acc = self.accounts.get((p.eid, "shopify-1"))
        email = acc[0][1] if acc and acc[0] else email_variant(rng, *p.emails[0], stable=True)
        for _ in range(n):
            t = min(t + rng.randint(86400, 90 * 86400), END - 1)
            name = latin_full_name(rng, p)
            if chance(rng, 0.5):
                first, last = split_latin(name)
                name = f"{first} {last[:1]}." if last else first
            rating = rng.choice([5, 5, 5, 4, 4, 3, 2, 1])
            r = {"kind": "review", "external_id": f"jm-{self.ids.next(conn):07d}",
                 "product": rng.choice(WEST_PRODUCTS)[0], "rating": rating, "rating_scale": 5,
                 "text": rng.choice(REVIEW_TEXTS), "reviewer": {"name": name, "email": email if chance(rng, 0.92) else None},
                 "created_at": rfc3339(t, False), "verified": chance(rng, 0.7)}
            out.append((t, r))
        return out

    # Which connections a person uses, by where they live.
    USE = {
        "CN": [("taobao-1", 0.65), ("jd-1", 0.35), ("wechat-1", 0.3), ("email-1", 0.08),
               ("shopify-1", 0.1), ("woocommerce-1", 0.04), ("whatsapp-1", 0.04), ("judgeme-1", 0.03)],
        "WEST": [("shopify-1", 0.65), ("woocommerce-1", 0.3), ("whatsapp-1", 0.25), ("email-1", 0.3),
                 ("judgeme-1", 0.2), ("wechat-1", 0.01)],
    }

    def person_records(self, p):
        """All (time, record) of one person, with connection ids attached."""
        rng = self.rng
        n = PICK_COUNT(rng)
        self.accounts.clear()  # accounts are per person; keeps memory flat
        table = self.USE["CN" if p.country == "CN" else "WEST"]
        conns = [c for c, prob in table if chance(rng, prob)]
        if not conns:
            conns = [table[0][0]]
        rng.shuffle(conns)
        conns = conns[:n]
        if "judgeme-1" in conns and len(conns) > 1:  # reviews follow purchases
            conns.remove("judgeme-1")
            conns.append("judgeme-1")
        share = [1] * len(conns)
        for _ in range(n - len(conns)):
            share[rng.randrange(len(conns))] += 1
        out = []
        for conn, k in zip(conns, share):
            t0 = rng.randint(p.start, min(END - 86400, p.start + 365 * 86400))
            if conn in ("whatsapp-1", "wechat-1", "email-1"):
                recs = self.messages(p, conn, k, t0)
            elif conn == "judgeme-1":
                recs = self.reviews(p, conn, k, t0)
            else:
                recs = self.shop_orders(p, conn, k, t0)
            for t, r in recs:
                r["connection_id"] = conn
                r["default_region"] = REGION[conn]
                out.append((t, r))
        return out

    def unit(self, next_eid):
        """One single person or one household (2-4 people at one address)."""
        rng = self.rng
        r = rng.random()
        country = "CN" if r < 0.55 else "US" if r < 0.78 else "GB" if r < 0.9 else "DE"
        if not chance(rng, 0.14):
            return [new_person(rng, next_eid, country, self.taken)]
        size = rng.choice([2, 2, 2, 3, 3, 4])
        head = new_person(rng, next_eid, country, self.taken)
        members = [head]
        for i in range(1, size):
            if country == "CN":
                family = (head.han_family, head.py_family) if i > 1 or chance(rng, 0.2) else None
            else:
                family = head.last if chance(rng, 0.75) else None
            members.append(new_person(rng, next_eid + i, country, self.taken, family))
        landline = None
        if chance(rng, 0.45):
            if country == "CN":
                area = head.addresses[0][1][3]
                landline = (area, area + str(rng.randint(2, 8)) + digits(rng, 7))
            elif country == "US":
                landline = ("", rng.choice(head.addresses[0][1][4]) + str(rng.randint(2, 9)) + digits(rng, 6))
            elif country == "GB":
                area = head.addresses[0][1][2]
                landline = ("", area + ("7" if area == "20" else "4") + digits(rng, 9 - len(area)))
            else:
                area = head.addresses[0][1][2]
                landline = ("", area + "3" + digits(rng, 9 - len(area)))
        family_email = None
        if chance(rng, 0.08):
            family_email = unique(rng, self.taken, ((head.last if country != "CN" else head.py_family).lower().replace("'", "")
                            .encode("ascii", "ignore").decode() + "family" + digits(rng, 2),
                            DOMAINS["CN" if country == "CN" else "US"](rng)))
        for m in members:
            m.household = next_eid
            m.addresses = list(head.addresses[:1]) + m.addresses[1:]
            if landline:
                m.landline_area, m.landline = landline
            if family_email:
                m.emails = [family_email] + m.emails
        return members


# --------------------------------------------------------------------------
# Output: monthly buckets, then a time-sorted file
# --------------------------------------------------------------------------

def generate(args):
    os.makedirs(args.out, exist_ok=True)
    label = args.records if args.records else args.people
    jsonl = os.path.join(args.out, f"shop-{label}.jsonl")
    truth_path = os.path.join(args.out, f"shop-{label}.truth.csv")
    tmpdir = os.path.join(args.out, f".buckets-{label}")
    os.makedirs(tmpdir, exist_ok=True)
    n_buckets = (END - START) // BUCKET_SECONDS + 1
    buckets = [open(os.path.join(tmpdir, f"{i:03d}"), "w", encoding="utf-8") for i in range(n_buckets)]

    gen = Generator(args.seed)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    per_conn_kind = Counter()
    people = households = records = 0
    started = time.monotonic()
    with open(truth_path, "w", encoding="utf-8", newline="") as truth:
        truth.write("connection_id,external_id,entity\n")
        while True:
            if args.people and people >= args.people:
                break
            if args.records and records >= args.records:
                break
            members = gen.unit(people + 1)
            if args.people:
                members = members[: args.people - people]
            if len(members) > 1:
                households += 1
            for p in members:
                recs = gen.person_records(p)
                if args.records:
                    recs = recs[: args.records - records]
                if not recs:
                    continue  # the --records quota ran out
                people += 1
                entity = f"E{p.eid:07d}"
                for t, r in recs:
                    # Drop absent optional fields, as most senders do.
                    for key in [k for k, v in r.items() if v is None]:
                        del r[key]
                    for key in ("address", "shipping_address", "sender", "reviewer"):
                        if key in r:
                            r[key] = {k: v for k, v in r[key].items() if v is not None}
                    buckets[(t - START) // BUCKET_SECONDS].write(f"{t:010d}\t{dumps(r)}\n")
                    truth.write(f"{r['connection_id']},{r['external_id']},{entity}\n")
                    per_conn_kind[(r["connection_id"], r["kind"])] += 1
                    records += 1
    for b in buckets:
        b.close()
    with open(jsonl, "w", encoding="utf-8") as out:
        for i in range(n_buckets):
            path = os.path.join(tmpdir, f"{i:03d}")
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            lines.sort()
            out.writelines(line.split("\t", 1)[1] for line in lines)
            os.remove(path)
    os.rmdir(tmpdir)
    elapsed = time.monotonic() - started

    print(f"wrote {jsonl} and {truth_path} in {elapsed:.1f}s (seed {args.seed})")
    print(f"records {records}, entities {people}, households {households}, "
          f"placeholder orders {gen.placeholder_orders}")
    for (conn, kind), n in sorted(per_conn_kind.items()):
        print(f"  {conn:<14} {kind:<8} {n:>9}")


# --------------------------------------------------------------------------
# Exact key ceiling
# --------------------------------------------------------------------------

COUNTRY_CODES = [("86", 11), ("1", 10), ("44", 10), ("49", 10), ("49", 11)]


def phone_digits(raw):
    """Digits without formatting, international prefix, country code or trunk 0."""
    if "*" in raw:
        return None
    d = re.sub(r"\D", "", raw)
    if d.startswith("00"):
        d = d[2:]
    for cc, length in COUNTRY_CODES:
        if d.startswith(cc) and len(d) == len(cc) + length:
            d = d[len(cc):]
            break
    d = d.lstrip("0")
    return d if len(d) >= 7 else None


def record_keys(r):
    emails, phones = [], []
    kind = r["kind"]
    if kind == "customer":
        emails += r.get("emails", []) + [r.get("email")]
        phones += r.get("phones", []) + [r.get("phone")]
    elif kind == "order":
        emails.append(r.get("email"))
        phones.append(r.get("phone"))
    elif kind == "message":
        emails.append(r.get("sender", {}).get("email"))
        phones.append(r.get("sender", {}).get("phone"))
    else:
        emails.append(r.get("reviewer", {}).get("email"))
    keys = ["e:" + e.strip().lower() for e in emails if e and "*" not in e]
    keys += ["p:" + d for d in (phone_digits(p) for p in phones if p) if d]
    return keys


def ceiling(jsonl, stop_at=30):
    """Pairwise recall / precision of the transitive closure of exact keys.
    Also with "stop keys" (values on more than `stop_at` records, such as a
    shop's own phone) ignored, the usual guard against placeholder values."""
    truth_path = jsonl[: -len(".jsonl")] + ".truth.csv"
    entity = {}
    with open(truth_path, encoding="utf-8") as f:
        next(f)
        for line in f:
            conn, ext, e = line.rstrip("\n").rsplit(",", 2)
            entity[(conn, ext)] = e
    rec_entity, rec_keys, rec_cid = [], [], []
    with open(jsonl, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rec_entity.append(entity[(r["connection_id"], str(r["external_id"]))])
            rec_keys.append(record_keys(r))
            cid = r["external_id"] if r["kind"] == "customer" else r.get("customer_external_id")
            rec_cid.append(f"c:{r['connection_id']}:{cid}" if cid else None)
    uses = Counter(k for keys in rec_keys for k in set(keys))
    pairs = lambda c: sum(n * (n - 1) // 2 for n in c.values())
    true = pairs(Counter(rec_entity))
    print(f"records {len(rec_entity)}, entities {len(set(rec_entity))}, true pairs {true}")

    def score(label, with_cids, stop):
        parent = list(range(len(rec_entity)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        owners = {}
        for i, keys in enumerate(rec_keys):
            if with_cids and rec_cid[i]:
                keys = keys + [rec_cid[i]]
            for k in keys:
                if stop and uses.get(k, 0) > stop_at:
                    continue
                j = owners.setdefault(k, i)
                parent[find(i)] = find(j)
        roots = [find(i) for i in range(len(parent))]
        sizes = Counter(roots)
        predicted = pairs(sizes)
        hit = pairs(Counter(zip(rec_entity, roots)))
        print(f"  {label:<44} recall {hit / true:.4f}  precision {hit / max(predicted, 1):.4f}"
              f"  largest cluster {max(sizes.values())}")

    score("email/phone", False, False)
    score(f"email/phone, stop keys (>{stop_at} records) dropped", False, True)
    score("+ connection customer ids", True, False)
    score("+ connection customer ids, stop keys dropped", True, True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--people", type=int, help="number of people (entities)")
    size.add_argument("--records", type=int, help="number of records (people follow, about records/3)")
    size.add_argument("--ceiling", metavar="JSONL", help="score the exact-key ceiling of a generated file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="/work/gen-out")
    args = ap.parse_args()
    if args.ceiling:
        ceiling(args.ceiling)
        return
    out = os.path.abspath(args.out)
    if out == "/work/main" or out.startswith("/work/main/"):
        sys.exit("refusing to write inside the repository")
    generate(args)


if __name__ == "__main__":
    main()
