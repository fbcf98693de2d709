//! Name and place tables for the synthetic district.

/// Surnames with rough relative frequencies (the common ones first), including compound ones.
pub(crate) const SURNAMES: &[(&str, u32)] = &[
    ("王", 720),
    ("李", 710),
    ("张", 690),
    ("刘", 540),
    ("陈", 460),
    ("杨", 330),
    ("黄", 250),
    ("赵", 230),
    ("吴", 210),
    ("周", 200),
    ("徐", 170),
    ("孙", 160),
    ("马", 150),
    ("朱", 140),
    ("胡", 140),
    ("郭", 130),
    ("何", 120),
    ("高", 110),
    ("林", 110),
    ("罗", 100),
    ("郑", 100),
    ("梁", 90),
    ("谢", 80),
    ("宋", 80),
    ("唐", 70),
    ("许", 70),
    ("韩", 70),
    ("冯", 70),
    ("邓", 70),
    ("曹", 60),
    ("彭", 60),
    ("曾", 60),
    ("肖", 60),
    ("田", 60),
    ("董", 50),
    ("袁", 50),
    ("潘", 50),
    ("于", 50),
    ("蒋", 50),
    ("蔡", 50),
    ("余", 50),
    ("杜", 40),
    ("叶", 40),
    ("程", 40),
    ("苏", 40),
    ("魏", 40),
    ("吕", 40),
    ("丁", 40),
    ("任", 40),
    ("沈", 40),
    ("姚", 40),
    ("卢", 40),
    ("姜", 30),
    ("崔", 30),
    ("钟", 30),
    ("谭", 30),
    ("陆", 30),
    ("汪", 30),
    ("范", 30),
    ("金", 30),
    ("石", 30),
    ("廖", 30),
    ("贾", 30),
    ("夏", 30),
    ("熊", 40),
    ("付", 30),
    ("方", 30),
    ("万", 20),
    ("雷", 20),
    ("龚", 20),
    ("欧阳", 8),
    ("司马", 2),
    ("上官", 2),
    ("诸葛", 2),
    ("东方", 1),
    ("皇甫", 1),
    ("慕容", 1),
    ("令狐", 1),
    ("端木", 1),
    ("公孙", 1),
];

pub(crate) const GIVEN_MALE: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "帅", "旭", "宁", "龙", "林", "阳", "建国",
    "建军", "志强", "志明", "海涛", "文斌", "晓东", "俊杰", "子轩", "浩然", "宇航", "梓豪", "博文",
    "天佑", "一鸣", "国庆", "卫东", "德胜", "永生", "家豪", "思远", "泽宇", "明轩",
];

pub(crate) const GIVEN_FEMALE: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "琳", "晶", "颖", "倩",
    "洁", "萍", "红", "梅", "丹", "慧", "莉", "琴", "云", "秀英", "桂英", "玉兰", "秀兰", "淑珍",
    "丽华", "晓燕", "雅琪", "欣怡", "诗涵", "梓涵", "紫萱", "思彤", "雨桐", "可馨", "佳怡", "若曦",
    "梦瑶", "静怡", "婉清", "春梅", "美玲", "凤英", "翠华", "海燕",
];

/// Characters used for typos in names (a plausible wrong character).
pub(crate) const TYPO_CHARS: &[char] = &[
    '华', '化', '花', '伟', '玮', '炜', '敏', '民', '明', '铭', '丽', '莉', '俐', '静', '靜', '婧',
];

/// A district the simulator can play: code, province, city, district name, streets.
#[derive(Debug, Clone, Copy)]
pub struct District {
    pub code: u32,
    pub province: &'static str,
    pub province_short: &'static str,
    pub city: &'static str,
    pub name: &'static str,
    pub streets: &'static [&'static str],
}

pub const DISTRICTS: &[District] = &[
    District {
        code: 420106,
        province: "湖北省",
        province_short: "鄂",
        city: "武汉市",
        name: "武昌区",
        streets: &[
            "积玉桥街道",
            "杨园街道",
            "徐家棚街道",
            "粮道街道",
            "中华路街道",
            "黄鹤楼街道",
            "紫阳街道",
            "白沙洲街道",
            "首义路街道",
            "中南路街道",
            "水果湖街道",
            "珞珈山街道",
            "石洞街道",
            "南湖街道",
        ],
    },
    District {
        code: 440303,
        province: "广东省",
        province_short: "粤",
        city: "深圳市",
        name: "罗湖区",
        streets: &[
            "桂园街道",
            "黄贝街道",
            "东门街道",
            "翠竹街道",
            "南湖街道",
            "笋岗街道",
            "东湖街道",
            "莲塘街道",
            "东晓街道",
            "清水河街道",
        ],
    },
    District {
        code: 440310,
        province: "广东省",
        province_short: "粤",
        city: "深圳市",
        name: "坪山区",
        streets: &[
            "坪山街道",
            "马峦街道",
            "碧岭街道",
            "石井街道",
            "坑梓街道",
            "龙田街道",
        ],
    },
    District {
        code: 440604,
        province: "广东省",
        province_short: "粤",
        city: "佛山市",
        name: "禅城区",
        streets: &["祖庙街道", "石湾镇街道", "张槎街道", "南庄镇"],
    },
    District {
        code: 510113,
        province: "四川省",
        province_short: "川",
        city: "成都市",
        name: "青白江区",
        streets: &[
            "大弯街道",
            "大同街道",
            "弥牟镇",
            "城厢镇",
            "姚渡镇",
            "清泉镇",
            "福洪镇",
            "人和乡",
        ],
    },
];

pub fn district(code: u32) -> Option<&'static District> {
    DISTRICTS.iter().find(|d| d.code == code)
}

/// Community name stems; a community is `<stem>社区`.
pub(crate) const COMMUNITY_STEMS: &[&str] = &[
    "和平",
    "幸福",
    "东湖",
    "长春",
    "解放",
    "建设",
    "友谊",
    "新河",
    "南苑",
    "北苑",
    "桃园",
    "梅园",
    "文昌",
    "宝通",
    "彭刘杨",
    "大成",
    "都府堤",
    "首义",
    "紫阳",
    "民主",
    "复兴",
    "丁字桥",
    "张家湾",
    "洪山",
    "翠微",
    "秦园",
    "体育",
    "阅马场",
    "昙华林",
    "花园山",
];

pub(crate) const ROADS: &[&str] = &[
    "解放路",
    "中山路",
    "和平大道",
    "武珞路",
    "中北路",
    "民主路",
    "友谊大道",
    "八一路",
    "中南路",
    "积玉桥路",
    "临江大道",
    "新河街",
    "复兴路",
    "白沙洲大道",
    "珞狮路",
    "徐东大街",
    "才华街",
    "胭脂路",
    "粮道街",
    "司门口街",
];

/// Other places people move in from or out to (area codes).
pub(crate) const OTHER_AREAS: &[u32] = &[
    420102, 420103, 420104, 420105, 420107, 420111, 420115, 110105, 310115, 440106, 500103, 430104,
    360102, 410105,
];

/// Ethnicity codes (GB/T 3304) with weights: 汉 01 dominates.
pub(crate) const ETHNICITIES: &[(&str, u32)] = &[
    ("01", 960),
    ("03", 10),
    ("05", 5),
    ("15", 8),
    ("11", 5),
    ("04", 4),
    ("08", 4),
    ("06", 4),
];

/// 字号 syllables for enterprise names.
pub(crate) const BRAND: &[&str] = &[
    "鑫", "源", "华", "泰", "恒", "盛", "达", "通", "博", "远", "创", "新", "宏", "信", "锦", "瑞",
    "辰", "光", "楚", "江", "汉", "东", "湖", "天", "和", "众", "联", "智", "云", "海", "峰", "融",
    "睿", "凯", "晟", "昊", "德", "嘉", "中", "长",
];

/// Industry (GB/T 4754 section + division), name word, statistics sector, weight.
pub(crate) const INDUSTRIES: &[(&str, &str, &str, u32)] = &[
    ("I65", "科技", "services", 140),
    ("I64", "网络科技", "services", 60),
    ("M73", "生物科技", "services", 30),
    ("M75", "科技服务", "services", 50),
    ("L72", "商务咨询", "services", 120),
    ("F51", "贸易", "wholesale_retail", 170),
    ("F52", "商贸", "wholesale_retail", 110),
    ("H62", "餐饮管理", "services", 70),
    ("O80", "家政服务", "services", 30),
    ("E47", "建设工程", "construction", 60),
    ("E50", "装饰工程", "construction", 40),
    ("K70", "房地产开发", "services", 20),
    ("C39", "电子", "industry", 25),
    ("C38", "电气", "industry", 20),
    ("C35", "机械设备", "industry", 20),
    ("C27", "医药", "industry", 12),
    ("C14", "食品", "industry", 10),
    ("P83", "教育咨询", "services", 25),
    ("Q84", "健康管理", "services", 20),
    ("R86", "文化传媒", "services", 40),
];

pub(crate) const ENTERPRISE_TYPES: &[(&str, u32)] = &[
    ("有限责任公司（自然人投资或控股）", 700),
    ("有限责任公司（自然人独资）", 150),
    ("个人独资企业", 60),
    ("股份有限公司（非上市、自然人投资或控股）", 40),
    ("有限责任公司（国有独资）", 10),
    ("有限合伙企业", 40),
];

pub(crate) const HOSPITALS: &[&str] = &[
    "湖北省妇幼保健院",
    "武汉大学人民医院",
    "武汉大学中南医院",
    "武昌医院",
    "湖北省中医院",
    "武汉市第七医院",
];
pub(crate) const FUNERAL_HOMES: &[&str] = &["武昌殡仪馆", "武汉市石门峰殡仪馆", "汉阳殡仪馆"];
