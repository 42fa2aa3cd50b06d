/**
 * The small world the bundled instruction set talks about: a fact table for closed QA and
 * word lists for the procedural families. Kept short and repetitive on purpose: a model of
 * a few million parameters with a ~1024-token vocabulary has to be able to learn it.
 */

/** Closed-QA facts: relation, subject, answer. Answers are single words. */
export interface Fact {
  relation: 'capital' | 'colour' | 'sound' | 'opposite';
  subject: string;
  answer: string;
}

const CAPITALS: Array<[string, string]> = [
  ['France', 'Paris'], ['Spain', 'Madrid'], ['Italy', 'Rome'], ['Germany', 'Berlin'], ['Japan', 'Tokyo'],
  ['Egypt', 'Cairo'], ['Peru', 'Lima'], ['Norway', 'Oslo'], ['Ireland', 'Dublin'], ['Greece', 'Athens'],
  ['Portugal', 'Lisbon'], ['Poland', 'Warsaw'], ['Austria', 'Vienna'], ['Kenya', 'Nairobi'], ['Cuba', 'Havana'],
  ['Chile', 'Santiago'], ['Canada', 'Ottawa'], ['China', 'Beijing'], ['Russia', 'Moscow'], ['Sweden', 'Stockholm'],
  ['Finland', 'Helsinki'], ['Denmark', 'Copenhagen'], ['Hungary', 'Budapest'], ['Belgium', 'Brussels'],
  ['Ecuador', 'Quito'], ['Thailand', 'Bangkok'], ['Vietnam', 'Hanoi'], ['Turkey', 'Ankara'], ['Nepal', 'Kathmandu'],
  ['Iran', 'Tehran'],
];

const FRUIT_COLOURS: Array<[string, string]> = [
  ['banana', 'yellow'], ['lemon', 'yellow'], ['lime', 'green'], ['cherry', 'red'], ['strawberry', 'red'],
  ['orange', 'orange'], ['plum', 'purple'], ['blueberry', 'blue'], ['tomato', 'red'], ['pear', 'green'],
  ['coconut', 'brown'], ['raspberry', 'red'], ['blackberry', 'black'], ['apricot', 'orange'],
];

const ANIMAL_SOUNDS: Array<[string, string]> = [
  ['cow', 'moo'], ['dog', 'woof'], ['cat', 'meow'], ['sheep', 'baa'], ['duck', 'quack'], ['pig', 'oink'],
  ['horse', 'neigh'], ['owl', 'hoot'], ['lion', 'roar'], ['frog', 'croak'], ['bee', 'buzz'], ['snake', 'hiss'],
  ['mouse', 'squeak'], ['crow', 'caw'], ['wolf', 'howl'],
];

const OPPOSITES: Array<[string, string]> = [
  ['hot', 'cold'], ['big', 'small'], ['up', 'down'], ['fast', 'slow'], ['happy', 'sad'], ['open', 'closed'],
  ['light', 'dark'], ['full', 'empty'], ['wet', 'dry'], ['hard', 'soft'], ['early', 'late'], ['long', 'short'],
  ['high', 'low'], ['rich', 'poor'], ['left', 'right'], ['day', 'night'], ['strong', 'weak'],
];

export const FACTS: readonly Fact[] = [
  ...CAPITALS.map(([subject, answer]) => ({ relation: 'capital' as const, subject, answer })),
  ...FRUIT_COLOURS.map(([subject, answer]) => ({ relation: 'colour' as const, subject, answer })),
  ...ANIMAL_SOUNDS.map(([subject, answer]) => ({ relation: 'sound' as const, subject, answer })),
  ...OPPOSITES.map(([subject, answer]) => ({ relation: 'opposite' as const, subject, answer })),
];

/** Short lower-case words for reversing, upper-casing and counting letters. */
export const WORDS: readonly string[] = [
  'cat', 'dog', 'sun', 'tree', 'book', 'fish', 'lamp', 'rain', 'moon', 'star', 'bird', 'milk', 'door', 'rose',
  'king', 'frog', 'cake', 'ship', 'road', 'hand', 'blue', 'green', 'apple', 'lemon', 'river', 'stone', 'cloud',
  'bread', 'chair', 'table', 'house', 'mouse', 'horse', 'water', 'light', 'night', 'plant', 'smile', 'dream',
  'train', 'clock', 'snow', 'wind', 'leaf', 'sand', 'gold', 'ring', 'boat', 'hat', 'cup', 'pen', 'map', 'box',
  'egg', 'owl', 'bee', 'fox', 'wolf', 'tiger', 'zebra', 'piano', 'robot', 'pizza', 'candy', 'music', 'paper',
];

/** Words that sorting rows put in alphabetical order. */
export const SORT_WORDS: readonly string[] = [
  'apple', 'banana', 'cherry', 'grape', 'lemon', 'mango', 'melon', 'peach', 'pear', 'plum', 'kiwi', 'fig',
  'cat', 'dog', 'horse', 'zebra', 'tiger', 'lion', 'bear', 'wolf', 'fox', 'owl', 'duck', 'goat',
];

/** People, ages and cities for the JSON-extraction family. */
export const NAMES: readonly string[] = [
  'Ana', 'Ben', 'Carla', 'David', 'Elena', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kira', 'Leo', 'Maya',
  'Nils', 'Olga', 'Pablo', 'Rosa', 'Sami', 'Tara', 'Yuki', 'Omar', 'Lena', 'Ivan', 'Zoe',
];
export const CITIES: readonly string[] = [
  'Lyon', 'Paris', 'Rome', 'Oslo', 'Lima', 'Cairo', 'Tokyo', 'Berlin', 'Madrid', 'Dublin', 'Quito', 'Seoul',
  'Milan', 'Porto', 'Vienna', 'Nice',
];

/** Pieces of templated reviews; a review uses one polarity throughout. */
export const REVIEW_SUBJECTS: readonly string[] = [
  'food', 'film', 'room', 'service', 'book', 'phone', 'coffee', 'hotel', 'staff', 'music', 'pizza', 'game',
];
export const POSITIVE_WORDS: readonly string[] = [
  'great', 'lovely', 'excellent', 'wonderful', 'amazing', 'perfect', 'friendly', 'delicious', 'fun', 'good',
];
export const NEGATIVE_WORDS: readonly string[] = [
  'terrible', 'awful', 'boring', 'rude', 'broken', 'dirty', 'bad', 'cold', 'slow', 'horrible',
];

/** Clearly harmful requests (verb phrases) that the refusal family answers with a fixed refusal. */
export const HARMFUL_ASKS: readonly string[] = [
  'make a bomb', 'poison someone', 'steal a car', 'break into a house', "hack into someone's email",
  'make a fake passport', 'hurt my neighbour', 'steal from a shop', 'make a weapon to hurt people',
  'set fire to a school', 'cheat an old man out of his savings', "spy on my partner's phone",
  'write a computer virus', 'rob a bank', 'buy a gun illegally', 'forge a signature', 'steal a credit card',
  'poison a dog', 'burn down a house', 'blackmail my boss', 'make fake money', 'break into a car',
  'bully a classmate', 'kidnap a child', 'sell stolen phones', 'make a deadly poison',
  "steal my friend's password", 'hurt a cat', "break someone's arm", 'sneak a knife onto a plane',
  'threaten my teacher', 'scam old people on the phone', 'stalk my ex', 'make a fake ID', 'steal a bike',
  'crash a car into someone', 'hide a body', 'scare a child until he cries',
];

/** The one refusal every refusal row answers with. */
export const REFUSAL = "I'm sorry, but I can't help with that.";

/** System prompts that ask for nothing special: added to some rows so a system turn alone does not mean "capitals". */
export const NEUTRAL_SYSTEM_PROMPTS: readonly string[] = [
  'You are a helpful assistant.',
  'You are a helpful assistant. Keep answers short.',
  'Answer briefly.',
];
