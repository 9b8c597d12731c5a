// Caption JSONL, COCO captions and VQA JSONL readers: path resolution, every bad-record
// message naming file:line, skip_bad counting, and writer/reader round trips.
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "models/dataset.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

using Strings = std::vector<std::string>;

class Readers : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_dataset");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_ + "/" + name).parent_path());
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST_F(Readers, CaptionJsonl) {
  const std::string path =
      write("data/train.jsonl",
            "{\"image\": \"img/a.png\", \"captions\": [\"a red circle\", \"a "
            "circle\"]}\n"
            "\n"
            "  {\"image\": \"/abs/b.jpg\", \"caption\": \"one \\u00e9 caption\"}\r\n");
  const std::vector<CaptionRecord> r = read_caption_jsonl(path);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].image, dir_ + "/data/img/a.png");
  EXPECT_EQ(r[0].captions, (Strings{"a red circle", "a circle"}));
  EXPECT_EQ(r[0].source, path + ":1");
  EXPECT_EQ(r[1].image, "/abs/b.jpg");
  EXPECT_EQ(r[1].captions, (Strings{"one \u00e9 caption"}));
  EXPECT_EQ(r[1].source, path + ":3");
  EXPECT_EQ(r[1].image_id, 3);
  EXPECT_EQ(read_captions(path).size(), 2u);
}

TEST_F(Readers, CaptionJsonlErrorsNameFileAndLine) {
  const std::string ok = "{\"image\": \"a.png\", \"captions\": [\"x\"]}\n";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"image\": \"a.png\", \"captions\": [\"x\"]", ":2: malformed JSON"},
      {"[1, 2]", ":2: expected a JSON object"},
      {"{\"captions\": [\"x\"]}", ":2: missing \"image\""},
      {"{\"image\": 3, \"captions\": [\"x\"]}", ":2: \"image\" must be a string"},
      {"{\"image\": \"\", \"captions\": [\"x\"]}", ":2: empty image"},
      {"{\"image\": \"a.png\"}", ":2: missing \"captions\""},
      {"{\"image\": \"a.png\", \"captions\": \"x\"}", ":2: \"captions\" must be a list of strings"},
      {"{\"image\": \"a.png\", \"captions\": [1]}", ":2: \"captions\" must be a list of strings"},
      {"{\"image\": \"a.png\", \"captions\": []}", ":2: no captions"},
      {"{\"image\": \"a.png\", \"captions\": [\"x\", \"  \"]}", ":2: empty caption (captions[1])"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string path =
        write("bad" + std::to_string(i) + ".jsonl", ok + bad[i].first + "\n" + ok);
    EXPECT_IRIS_ERROR(read_caption_jsonl(path), path + bad[i].second) << bad[i].first;
  }
  EXPECT_IRIS_ERROR(read_caption_jsonl(dir_ + "/none.jsonl"), "none.jsonl: cannot open");
}

TEST_F(Readers, CaptionJsonlSkipBadCounts) {
  const std::string path = write("mixed.jsonl",
                                 "{\"image\": \"a.png\", \"captions\": [\"x\", \"\", \"y\"]}\n"
                                 "not json\n"
                                 "{\"image\": \"b.png\", \"captions\": [\"\"]}\n"
                                 "{\"image\": \"c.png\", \"captions\": [\"z\"]}\n");
  ReadReport report;
  const std::vector<CaptionRecord> r = read_caption_jsonl(path, {.skip_bad = true}, &report);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].captions, (Strings{"x", "y"}));
  EXPECT_EQ(r[1].image, dir_ + "/c.png");
  // The empty caption of line 1, line 2, the empty caption of line 3 and line 3 itself.
  EXPECT_EQ(report.skipped, 4);
  ASSERT_EQ(report.messages.size(), 4u);
  EXPECT_NE(report.messages[0].find(path + ":1: empty caption (captions[1])"), std::string::npos);
  EXPECT_NE(report.messages[1].find(path + ":2: malformed JSON"), std::string::npos);
  EXPECT_NE(report.messages[3].find(path + ":3: no caption left"), std::string::npos);
  EXPECT_EQ(read_caption_jsonl(path, {.skip_bad = true}).size(), 2u);  // report optional
}

TEST_F(Readers, VqaJsonl) {
  const std::string path = write(
      "vqa.jsonl",
      "{\"image\": \"a.png\", \"question\": \"what color?\", \"answer\": \"red\", \"type\": "
      "\"color\"}\n"
      "{\"image\": \"b.png\", \"question\": \"how many?\", \"answers\": [\"2\", \"two\", \"3\", "
      "\"two\"]}\n"
      "{\"image\": \"c.png\", \"question\": \"is it?\", \"answer\": \"yes\", \"answers\": "
      "[\"yes\", \"no\"]}\n");
  const std::vector<VqaRecord> r = read_vqa_jsonl(path);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].image, dir_ + "/a.png");
  EXPECT_EQ(r[0].answer, "red");
  EXPECT_EQ(r[0].answers, (Strings{"red"}));
  EXPECT_EQ(r[0].type, "color");
  EXPECT_EQ(r[1].answer, "two");  // the most frequent human answer
  EXPECT_EQ(r[1].answers, (Strings{"2", "two", "3", "two"}));
  EXPECT_EQ(r[1].type, "");
  EXPECT_EQ(r[2].answer, "yes");
  EXPECT_EQ(r[2].answers, (Strings{"yes", "no"}));
  EXPECT_EQ(r[2].source, path + ":3");
}

TEST_F(Readers, VqaJsonlErrors) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{\"image\": \"a.png\", \"answer\": \"x\"}", ":1: missing \"question\""},
      {"{\"image\": \"a.png\", \"question\": \"q\"}", ":1: missing \"answer\""},
      {"{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \" \"}", ":1: empty answer"},
      {"{\"image\": \"a.png\", \"question\": \"\", \"answer\": \"x\"}", ":1: empty question"},
      {"{\"image\": \"a.png\", \"question\": \"q\", \"answers\": []}",
       ":1: empty \"answers\" list"},
      {"{\"image\": \"a.png\", \"question\": \"q\", \"answers\": [\"a\", \"\"]}",
       ":1: empty answer (answers[1])"},
      {"{\"image\": \"a.png\", \"question\": \"q\", \"answer\": \"x\", \"type\": 1}",
       ":1: \"type\" must be a string"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const std::string path = write("bad" + std::to_string(i) + ".jsonl", bad[i].first + "\n");
    EXPECT_IRIS_ERROR(read_vqa_jsonl(path), path + bad[i].second) << bad[i].first;
  }
  ReadReport report;
  const std::string path = write("mixed.jsonl", bad[0].first +
                                                    "\n{\"image\": \"a.png\", \"question\": \"q\", "
                                                    "\"answer\": \"x\"}\n");
  EXPECT_EQ(read_vqa_jsonl(path, {.skip_bad = true}, &report).size(), 1u);
  EXPECT_EQ(report.skipped, 1);
}

TEST_F(Readers, CocoCaptions) {
  const std::string path = write(
      "annotations/captions_val.json",
      R"({"info": {}, "images": [{"id": 7, "file_name": "x.jpg"}, {"id": 3, "file_name": "y.jpg"},
          {"id": 9, "file_name": "z.jpg"}],
          "annotations": [{"image_id": 3, "id": 1, "caption": "A dog."},
                          {"image_id": 7, "id": 2, "caption": "A cat."},
                          {"image_id": 3, "id": 3, "caption": "Two dogs."}]})");
  ReadReport report;
  const std::vector<CaptionRecord> r =
      read_coco_captions(path, dir_ + "/images", {.skip_bad = true}, &report);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].image_id, 7);
  EXPECT_EQ(r[0].image, dir_ + "/images/x.jpg");
  EXPECT_EQ(r[0].captions, (Strings{"A cat."}));
  EXPECT_EQ(r[1].captions, (Strings{"A dog.", "Two dogs."}));
  EXPECT_EQ(report.skipped, 1);  // image 9 has no caption
  EXPECT_IRIS_ERROR(read_coco_captions(path), "images[2]: image 9 has no caption");
  const std::vector<CaptionRecord> all = read_coco_captions(path, "", {}, nullptr, true);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].image, dir_ + "/annotations/x.jpg");
  EXPECT_EQ(read_captions(path, {.skip_bad = true}).size(), 2u);
}

TEST_F(Readers, CocoCaptionsErrors) {
  auto coco = [&](const std::string& name, const std::string& images, const std::string& anns) {
    return write(name, "{\"images\": " + images + ", \"annotations\": " + anns + "}");
  };
  const std::string img = "[{\"id\": 1, \"file_name\": \"a.jpg\"}]";
  EXPECT_IRIS_ERROR(
      read_coco_captions(coco("a.json", img, "[{\"image_id\": 2, \"caption\": \"x\"}]")),
      "a.json: annotations[0]: unknown image_id 2");
  EXPECT_IRIS_ERROR(
      read_coco_captions(coco("b.json", img, "[{\"image_id\": 1, \"caption\": \"\"}]")),
      "b.json: annotations[0]: empty caption");
  EXPECT_IRIS_ERROR(
      read_coco_captions(coco("c.json", "[{\"id\": 1.5, \"file_name\": \"a\"}]", "[]")),
      "c.json: images[0]: \"id\" must be an integer");
  EXPECT_IRIS_ERROR(read_coco_captions(coco("d.json",
                                            "[{\"id\": 1, \"file_name\": \"a\"}, {\"id\": 1, "
                                            "\"file_name\": \"b\"}]",
                                            "[]")),
                    "d.json: images[1]: duplicate image id 1");
  EXPECT_IRIS_ERROR(read_coco_captions(write("e.json", "{\"images\": []}")),
                    "e.json: expected a top-level \"annotations\" list");
  EXPECT_IRIS_ERROR(read_coco_captions(write("f.json", "{\"images\": [")),
                    "f.json: malformed JSON");
}

TEST_F(Readers, WritersRoundTrip) {
  const std::vector<CaptionRecord> caps = {
      {"images/a.png", {"a \"quoted\" caption", "line\nbreak"}, 1, ""},
      {"images/b.png", {"x"}, 2, ""}};
  write_caption_jsonl(dir_ + "/c.jsonl", caps);
  const std::vector<CaptionRecord> back = read_caption_jsonl(dir_ + "/c.jsonl");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].image, dir_ + "/images/a.png");
  EXPECT_EQ(back[0].captions, caps[0].captions);
  const std::vector<VqaRecord> qs = {{"a.png", "what?", "red", {"red"}, "color", ""},
                                     {"b.png", "how many?", "2", {"2", "two", "2"}, "", ""}};
  write_vqa_jsonl(dir_ + "/q.jsonl", qs);
  const std::vector<VqaRecord> qback = read_vqa_jsonl(dir_ + "/q.jsonl");
  ASSERT_EQ(qback.size(), 2u);
  EXPECT_EQ(qback[0].answers, (Strings{"red"}));
  EXPECT_EQ(qback[0].type, "color");
  EXPECT_EQ(qback[1].answer, "2");
  EXPECT_EQ(qback[1].answers, (Strings{"2", "two", "2"}));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/q.jsonl.tmp"));
  EXPECT_IRIS_ERROR(write_vqa_jsonl(dir_ + "/no/such/q.jsonl", qs),
                    "no/such/q.jsonl: cannot create");
}

TEST(ResolvePath, RelativeToTheFilesFolder) {
  EXPECT_EQ(resolve_path("/data/train.jsonl", "img/a.png"), "/data/img/a.png");
  EXPECT_EQ(resolve_path("/data/train.jsonl", "/abs/a.png"), "/abs/a.png");
  EXPECT_EQ(resolve_path("train.jsonl", "img/a.png"), "img/a.png");
  EXPECT_EQ(resolve_path("../d/train.jsonl", "a.png"), "../d/a.png");
}

}  // namespace
}  // namespace iris::models
